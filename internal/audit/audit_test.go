package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/clock"
)

func sampleEvent() audit.Event {
	return audit.Event{
		Seq: 7, Time: t0.Truncate(time.Microsecond), Principal: "alice", Source: "10.0.0.1",
		Action: "cert.issue", Target: "0a1b", Outcome: audit.Success, RequestID: "req-1",
		Details: json.RawMessage(`{"profile":"server"}`),
	}
}

func TestComputeHashCoversEveryFieldButSeq(t *testing.T) {
	t.Parallel()
	prev := audit.Genesis()
	base := sampleEvent()
	want := base.ComputeHash(prev)
	if len(want) != audit.HashSize {
		t.Fatalf("hash is %d bytes", len(want))
	}
	for _, tc := range []struct {
		name   string
		change func(e *audit.Event)
	}{
		{"time", func(e *audit.Event) { e.Time = e.Time.Add(time.Microsecond) }},
		{"principal", func(e *audit.Event) { e.Principal = "bob" }},
		{"source", func(e *audit.Event) { e.Source = "10.0.0.2" }},
		{"action", func(e *audit.Event) { e.Action = "cert.revoke" }},
		{"target", func(e *audit.Event) { e.Target = "0a1c" }},
		{"outcome", func(e *audit.Event) { e.Outcome = audit.Denied }},
		{"request id", func(e *audit.Event) { e.RequestID = "req-2" }},
		{"details", func(e *audit.Event) { e.Details = json.RawMessage(`{"profile":"client"}`) }},
		{"details whitespace", func(e *audit.Event) { e.Details = json.RawMessage(`{"profile": "server"}`) }},
		// Length prefixes: moving bytes between fields changes the hash.
		{"field boundary", func(e *audit.Event) { e.Principal, e.Source = "alice1", "0.0.0.1" }},
	} {
		e := sampleEvent()
		tc.change(&e)
		if bytes.Equal(e.ComputeHash(prev), want) {
			t.Errorf("changing %s left the hash unchanged", tc.name)
		}
	}
	e := sampleEvent()
	e.Seq = 99
	e.PrevHash, e.Hash = audit.Hash("x"), audit.Hash("y")
	if !bytes.Equal(e.ComputeHash(prev), want) {
		t.Error("Seq (or the stored hashes) changed the hash: a moved row would look modified")
	}
	other := bytes.Repeat([]byte{1}, audit.HashSize)
	if bytes.Equal(base.ComputeHash(other), want) {
		t.Error("the previous hash does not change the hash")
	}
	// Time is hashed at microsecond precision in UTC, what the store keeps.
	e = sampleEvent()
	e.Time = e.Time.In(time.FixedZone("X", 3600))
	if !bytes.Equal(e.ComputeHash(prev), want) {
		t.Error("the time zone changed the hash")
	}
}

func TestNormalize(t *testing.T) {
	t.Parallel()
	e := sampleEvent()
	e.Time = time.Date(2026, 1, 2, 3, 4, 5, 678901234, time.FixedZone("X", -7200))
	e.Details = nil
	e.Target = strings.Repeat("t", 5000)
	if err := e.Normalize(); err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 1, 2, 5, 4, 5, 678901000, time.UTC); !e.Time.Equal(want) || e.Time.Location() != time.UTC {
		t.Errorf("Time = %v, want %v in UTC", e.Time, want)
	}
	if string(e.Details) != "{}" {
		t.Errorf("empty Details became %q, want {}", e.Details)
	}
	if len(e.Target) != audit.MaxTarget || audit.MaxTarget != 256 {
		t.Errorf("Target is %d bytes after Normalize, want 256", len(e.Target))
	}
	// The cut never splits a character.
	e.Target = strings.Repeat("é", 200) // 400 bytes
	e.Principal = strings.Repeat("p", 5000)
	if err := e.Normalize(); err != nil {
		t.Fatal(err)
	}
	if len(e.Target) != 256 || !utf8.ValidString(e.Target) || len(e.Principal) != 1024 {
		t.Errorf("after Normalize: target %d bytes (valid UTF-8 %v), principal %d bytes; want 256, true, 1024",
			len(e.Target), utf8.ValidString(e.Target), len(e.Principal))
	}

	for _, tc := range []struct {
		name   string
		change func(e *audit.Event)
	}{
		{"no action", func(e *audit.Event) { e.Action = "" }},
		{"no outcome", func(e *audit.Event) { e.Outcome = "" }},
		{"no time", func(e *audit.Event) { e.Time = time.Time{} }},
		{"details too large", func(e *audit.Event) {
			e.Details = json.RawMessage(`{"x":"` + strings.Repeat("a", 64<<10) + `"}`)
		}},
	} {
		e := sampleEvent()
		tc.change(&e)
		if err := e.Normalize(); !errors.Is(err, audit.ErrInvalid) {
			t.Errorf("%s: Normalize = %v, want ErrInvalid", tc.name, err)
		}
	}
}

func TestVerifyEmptyAndGrowingLog(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			db, _ := b.open(t)
			kp := newProvider(t)
			r := verify(t, db, kp)
			if !r.Intact || r.Events != 0 || r.HeadSeq != 0 || !bytes.Equal(r.HeadHash, audit.Genesis()) || r.Checkpoints != 0 {
				t.Fatalf("empty log: %+v", r)
			}
			clk := clock.NewFake(t0)
			cp, err := audit.NewCheckpointer(audit.CheckpointConfig{Clock: clk}, db, kp)
			if err != nil {
				t.Fatal(err)
			}
			appendEvents(t, db, clk, 5)
			r = verify(t, db, kp)
			if !r.Intact || r.Events != 5 || r.HeadSeq != 5 || r.Checkpoints != 0 || r.Unanchored != 5 {
				t.Fatalf("5 events, no checkpoint: %+v", r)
			}
			if _, err := cp.Checkpoint(context.Background()); err != nil {
				t.Fatal(err)
			}
			appendEvents(t, db, clk, 3)
			r = verify(t, db, kp)
			seq, hash, err := db.AuditHead(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if !r.Intact || r.Events != 9 || r.HeadSeq != 9 || seq != 9 || !bytes.Equal(r.HeadHash, hash) ||
				r.Checkpoints != 1 || r.LastCheckpoint != 6 || r.Unanchored != 3 {
				t.Fatalf("after a checkpoint: %+v", r)
			}
			// Another process with a different KEK cannot vouch for the key.
			r = verify(t, db, newProvider(t))
			if r.Intact || r.Problem.Kind != "checkpoint" || r.Problem.Seq != 6 {
				t.Fatalf("wrong KEK: %+v", r.Problem)
			}
		})
	}
}
