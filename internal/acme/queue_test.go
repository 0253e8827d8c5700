package acme

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestQueueFairness: workers serve accounts round-robin, never run more
// than an account's share, and hold back a target already at its
// concurrency; in-flight limits refuse at reserve time.
func TestQueueFairness(t *testing.T) {
	t.Parallel()
	q := newQueue(queueLimits{total: 100, perAccount: 3, perTarget: 4, runningAccount: 1, runningPerTarget: 1})
	add := func(acct, target, id string) {
		t.Helper()
		if err := q.reserve(acct, target); err != nil {
			t.Fatalf("reserve %s %s: %v", acct, target, err)
		}
		q.submit(job{chID: id, accountID: acct, target: target})
	}
	add("a", "ta1", "a1")
	add("a", "ta2", "a2")
	add("a", "ta3", "a3")
	if err := q.reserve("a", "ta4"); !errors.Is(err, errAccountBacklog) {
		t.Fatalf("fourth job of a: %v, want errAccountBacklog", err)
	}
	add("b", "tb", "b1")
	add("c", "ta1", "c1") // same target as a1

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	take := func() job {
		t.Helper()
		j, ok := q.take(ctx)
		if !ok {
			t.Fatal("take timed out")
		}
		return j
	}
	a1 := take()
	b1 := take()
	if a1.chID != "a1" || b1.chID != "b1" {
		t.Fatalf("took %s, %s; want a1, b1", a1.chID, b1.chID)
	}
	// a runs its share and c's job waits for target ta1: nothing to take.
	short, stop := context.WithTimeout(ctx, 50*time.Millisecond)
	if j, ok := q.take(short); ok {
		t.Fatalf("took %s while a is at its share and ta1 busy", j.chID)
	}
	stop()
	q.done(a1)
	next := map[string]bool{take().chID: true, take().chID: true}
	if !next["c1"] || !next["a2"] {
		t.Fatalf("after a1 took %v, want c1 and a2", next)
	}
	if err := q.reserve("d", "ta1"); err != nil {
		t.Fatalf("reserve: %v", err)
	}
	q.release("d", "ta1")
	for range 3 {
		add("e", "ta9", "e")
	}
	add("f", "ta9", "f")
	if err := q.reserve("g", "ta9"); !errors.Is(err, errTargetBacklog) {
		t.Fatalf("fifth job on ta9: %v, want errTargetBacklog", err)
	}
	cancel()
	if _, ok := q.take(ctx); ok {
		t.Fatal("take after cancel returned a job")
	}
}
