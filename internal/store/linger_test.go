package store

import (
	"context"
	"log/slog"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// lingerQueue is a groupQueue of ints whose writes are reported on the
// returned channel; block, when set, holds each write until it receives.
func lingerQueue(t *testing.T, lp lingerPolicy, block chan struct{}) (*groupQueue[int], <-chan []int) {
	t.Helper()
	written := make(chan []int, 16)
	q := newGroupQueue(slog.New(slog.DiscardHandler), "test", lp, func(b []int) {
		written <- slices.Clone(b)
		if block != nil {
			<-block
		}
	}, func(int, any) {})
	t.Cleanup(func() {
		if block != nil {
			close(block)
		}
		q.stop()
	})
	return q, written
}

func nextBatch(t *testing.T, written <-chan []int, within time.Duration) []int {
	t.Helper()
	select {
	case b := <-written:
		return b
	case <-time.After(within):
		t.Fatalf("no batch written within %v", within)
		return nil
	}
}

func sendItem(t *testing.T, q *groupQueue[int], v int) {
	t.Helper()
	if err := q.send(context.Background(), v); err != nil {
		t.Fatal(err)
	}
}

// TestGroupQueueLoneCallerDoesNotWait: one caller at a time, nothing
// announced, pays no linger, however long the linger is.
func TestGroupQueueLoneCallerDoesNotWait(t *testing.T) {
	t.Parallel()
	q, written := lingerQueue(t, lingerPolicy{linger: time.Hour, coming: func() bool { return false }}, nil)
	for i := range 3 {
		sendItem(t, q, i)
		if b := nextBatch(t, written, 10*time.Second); !slices.Equal(b, []int{i}) {
			t.Fatalf("batch %v, want [%d]", b, i)
		}
	}
}

// TestGroupQueueWaitsForAnnounced: while coming reports an item on its
// way, the writer holds the batch for it, and writes as soon as it has
// come (not at the end of the linger).
func TestGroupQueueWaitsForAnnounced(t *testing.T) {
	t.Parallel()
	var coming atomic.Bool
	q, written := lingerQueue(t, lingerPolicy{linger: time.Hour, coming: coming.Load}, nil)
	coming.Store(true)
	sendItem(t, q, 1)
	select {
	case b := <-written:
		t.Fatalf("batch %v written while another item was announced", b)
	case <-time.After(50 * time.Millisecond):
	}
	coming.Store(false)
	sendItem(t, q, 2)
	if b := nextBatch(t, written, 10*time.Second); !slices.Equal(b, []int{1, 2}) {
		t.Fatalf("batch %v, want [1 2]", b)
	}
}

// TestGroupQueueLingerIsBounded: an announced item that never comes holds
// the batch for the linger and no longer.
func TestGroupQueueLingerIsBounded(t *testing.T) {
	t.Parallel()
	const linger = 100 * time.Millisecond
	q, written := lingerQueue(t, lingerPolicy{linger: linger, coming: func() bool { return true }}, nil)
	start := time.Now()
	sendItem(t, q, 1)
	b := nextBatch(t, written, 10*time.Second)
	// The upper bound leaves a loaded machine seconds of slack; a linger
	// that re-armed itself would never end.
	if waited := time.Since(start); !slices.Equal(b, []int{1}) || waited < linger || waited > linger+3*time.Second {
		t.Fatalf("batch %v after %v, want [1] after %v (at most seconds more)", b, waited, linger)
	}
}

// TestGroupQueueLingersAfterBatchOfMany: with nothing announced, a batch
// of more than one item (callers arriving together) makes the writer
// wait for company for the next batch; a batch of one stops that.
func TestGroupQueueLingersAfterBatchOfMany(t *testing.T) {
	t.Parallel()
	// Long enough that a wait cannot be mistaken for a slow machine.
	const linger = 1500 * time.Millisecond
	block := make(chan struct{})
	q, written := lingerQueue(t, lingerPolicy{linger: linger}, block)
	sendItem(t, q, 1)
	if b := nextBatch(t, written, 10*time.Second); !slices.Equal(b, []int{1}) {
		t.Fatalf("batch %v, want [1]", b)
	}
	// The writer is held in its first write: 2 and 3 queue behind it and
	// make the next batch together.
	sendItem(t, q, 2)
	sendItem(t, q, 3)
	block <- struct{}{}
	if b := nextBatch(t, written, 10*time.Second); !slices.Equal(b, []int{2, 3}) {
		t.Fatalf("batch %v, want [2 3]", b)
	}
	block <- struct{}{}
	start := time.Now()
	sendItem(t, q, 4)
	b := nextBatch(t, written, 10*time.Second)
	if waited := time.Since(start); !slices.Equal(b, []int{4}) || waited < linger {
		t.Fatalf("after a batch of two: batch %v after %v, want [4] after at least %v", b, waited, linger)
	}
	block <- struct{}{}
	start = time.Now()
	sendItem(t, q, 5)
	b = nextBatch(t, written, 10*time.Second)
	if waited := time.Since(start); !slices.Equal(b, []int{5}) || waited >= linger {
		t.Fatalf("after a batch of one: batch %v after %v, want [5] at once", b, waited)
	}
	block <- struct{}{}
}

// TestExpectCertificate: an announcement makes the certificate group
// commit's writer expect a row until it is withdrawn, once, however often
// the caller withdraws it.
func TestExpectCertificate(t *testing.T) {
	t.Parallel()
	db := openGroupTest(t)
	if db.batch == nil {
		t.Fatal("SQLite store has no certificate group commit")
	}
	coming := db.batch.q.coming
	if coming() {
		t.Fatal("a row is expected before any announcement")
	}
	a, b := db.ExpectCertificate(), db.ExpectCertificate()
	a()
	a()
	if !coming() {
		t.Fatal("withdrawing one announcement twice withdrew the other")
	}
	b()
	if coming() {
		t.Fatal("a row is still expected after every announcement was withdrawn")
	}
}

// TestGroupQueueStopEndsLinger: stopping the queue while the writer waits
// for announced items writes what it holds at once.
func TestGroupQueueStopEndsLinger(t *testing.T) {
	t.Parallel()
	written := make(chan []int, 4)
	q := newGroupQueue(slog.New(slog.DiscardHandler), "test", lingerPolicy{linger: time.Hour, coming: func() bool { return true }},
		func(b []int) { written <- slices.Clone(b) }, func(int, any) {})
	sendItem(t, q, 1)
	stopped := make(chan struct{})
	go func() { q.stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("stop did not return within 10s of a lingering batch")
	}
	if b := nextBatch(t, written, time.Second); !slices.Equal(b, []int{1}) {
		t.Fatalf("batch %v, want [1]", b)
	}
}
