package acme

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/netsource"
)

// TestQueueFairness: workers serve accounts round-robin, never run more
// than an account's share, and hold back a target already at its
// concurrency; in-flight limits refuse at reserve time.
func TestQueueFairness(t *testing.T) {
	t.Parallel()
	q := newQueue(queueLimits{total: 100, perAccount: 3, perTarget: 4, runningAccount: 1, runningPerTarget: 1, perSource: 100})
	add := func(acct, target, id string) {
		t.Helper()
		if _, err := q.reserve(job{accountID: acct, target: target}); err != nil {
			t.Fatalf("reserve %s %s: %v", acct, target, err)
		}
		q.submit(job{chID: id, accountID: acct, target: target})
	}
	add("a", "ta1", "a1")
	add("a", "ta2", "a2")
	add("a", "ta3", "a3")
	if _, err := q.reserve(job{accountID: "a", target: "ta4"}); !errors.Is(err, errAccountBacklog) {
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
	if _, err := q.reserve(job{accountID: "d", target: "ta1"}); err != nil {
		t.Fatalf("reserve: %v", err)
	}
	q.release(job{accountID: "d", target: "ta1"})
	for range 3 {
		add("e", "ta9", "e")
	}
	add("f", "ta9", "f")
	if _, err := q.reserve(job{accountID: "g", target: "ta9"}); !errors.Is(err, errTargetBacklog) {
		t.Fatalf("fifth job on ta9: %v, want errTargetBacklog", err)
	}
	cancel()
	if _, ok := q.take(ctx); ok {
		t.Fatal("take after cancel returned a job")
	}
}

// shipped are the queue limits with the shipped defaults (acme.Config and
// acme.Limits zero values).
var shipped = queueLimits{total: 4096, perAccount: 100, perTarget: 100, runningAccount: 2, runningPerTarget: 2, perSource: 200}

// TestQueueSybilSource is the reported attack: 41 anonymous accounts (fewer
// than one address may create in an hour) each reserving 100 challenges for
// distinct names would fill the 4096-job queue, so that every other
// account's challenge is refused. Anonymous accounts answering from one
// address now stop at the per-source limit, whatever the number of
// accounts, and an account answering from another address still gets in.
func TestQueueSybilSource(t *testing.T) {
	t.Parallel()
	q := newQueue(shipped)
	const attacker = "203.0.113.66"
	n := 0
	var refused error
	for a := range 41 {
		for i := range 100 {
			_, err := q.reserve(job{accountID: fmt.Sprintf("sybil-%d", a), target: fmt.Sprintf("dns:t%d-%d.tarpit.example", a, i), source: attacker})
			if err == nil {
				n++
			} else if refused == nil {
				refused = err
			}
		}
	}
	if n != shipped.perSource {
		t.Errorf("accounts answering from one address reserved %d slots, want the per-source limit %d", n, shipped.perSource)
	}
	if !errors.Is(refused, errSourceBacklog) {
		t.Errorf("first refusal %v, want errSourceBacklog", refused)
	}
	if _, err := q.reserve(job{accountID: "legit", target: "dns:www.example.internal", source: "198.51.100.7"}); err != nil {
		t.Fatalf("an account answering from another address: %v", err)
	}
	// A finished job frees its source's slot.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	q.submit(job{accountID: "sybil-0", target: "dns:t0-0.tarpit.example", source: attacker})
	j, ok := q.take(ctx)
	if !ok {
		t.Fatal("take timed out")
	}
	q.done(j)
	if _, err := q.reserve(job{accountID: "sybil-40", target: "dns:again.tarpit.example", source: attacker}); err != nil {
		t.Fatalf("after a job of the source finished: %v", err)
	}
}

// TestQueueReservesBoundShare: anonymous accounts spread over many
// addresses (each below the per-source limit) fill at most three quarters
// of the queue; an account with an external account binding still gets
// in, also from an address whose anonymous accounts are at their limit.
func TestQueueReservesBoundShare(t *testing.T) {
	t.Parallel()
	q := newQueue(shipped)
	n := 0
	var refused error
	for a := range 41 { // one address (a /64 each) per account
		src := netsource.Key(fmt.Sprintf("2001:db8:%x::1", a))
		for i := range 100 {
			_, err := q.reserve(job{accountID: fmt.Sprintf("sybil-%d", a), target: fmt.Sprintf("dns:t%d-%d.tarpit.example", a, i), source: src})
			if err == nil {
				n++
			} else if refused == nil {
				refused = err
			}
		}
	}
	if want := shipped.total * 3 / 4; n != want {
		t.Errorf("anonymous accounts reserved %d slots, want three quarters of the queue (%d)", n, want)
	}
	if !errors.Is(refused, errAnonymousFull) {
		t.Errorf("first refusal %v, want errAnonymousFull", refused)
	}
	if _, err := q.reserve(job{accountID: "late-anonymous", target: "dns:late.example", source: "192.0.2.1"}); !errors.Is(err, errAnonymousFull) {
		t.Errorf("another anonymous account: %v, want errAnonymousFull", err)
	}
	for i := range shipped.perAccount {
		if _, err := q.reserve(job{accountID: "bound", target: fmt.Sprintf("dns:h%d.example.internal", i), source: netsource.Key("2001:db8:0::99"), bound: true}); err != nil {
			t.Fatalf("challenge %d of an account with external account binding: %v", i, err)
		}
	}
	if _, err := q.reserve(job{accountID: "bound", target: "dns:one-more.example.internal", source: "192.0.2.1", bound: true}); !errors.Is(err, errAccountBacklog) {
		t.Errorf("bound account past its own limit: %v, want errAccountBacklog", err)
	}
}

// TestSourceKey: the per-source limit keys IPv4 addresses as they are,
// IPv6 by /64, and IPv4-mapped IPv6 as the IPv4 address.
func TestSourceKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ a, b string }{
		{"2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff"},
		{"::ffff:192.0.2.1", "192.0.2.1"},
		{"fe80::1%eth0", "fe80::2"},
	} {
		if netsource.Key(tc.a) != netsource.Key(tc.b) {
			t.Errorf("netsource.Key(%q) = %q, netsource.Key(%q) = %q: want the same", tc.a, netsource.Key(tc.a), tc.b, netsource.Key(tc.b))
		}
	}
	for _, tc := range []struct{ a, b string }{
		{"2001:db8:1:2::1", "2001:db8:1:3::1"},
		{"192.0.2.1", "192.0.2.2"},
		{"", "192.0.2.1"},
	} {
		if netsource.Key(tc.a) == netsource.Key(tc.b) {
			t.Errorf("netsource.Key(%q) = netsource.Key(%q) = %q: want different", tc.a, tc.b, netsource.Key(tc.a))
		}
	}
	if got := netsource.Key("2001:db8:1:2:3:4:5:6"); got != "2001:db8:1:2::/64" {
		t.Errorf("sourceKey = %q, want 2001:db8:1:2::/64", got)
	}
}

// TestQueueAlone: reserve says whether the job is its account's only one
// in flight, counting jobs reserved, waiting and running until done.
func TestQueueAlone(t *testing.T) {
	t.Parallel()
	q := newQueue(queueLimits{total: 10, perAccount: 5, perTarget: 5, runningAccount: 1, runningPerTarget: 1, perSource: 10})
	reserve := func(acct, target string) bool {
		t.Helper()
		alone, err := q.reserve(job{accountID: acct, target: target})
		if err != nil {
			t.Fatalf("reserve %s %s: %v", acct, target, err)
		}
		return alone
	}
	if !reserve("a", "t1") {
		t.Error("first job of a is not alone")
	}
	if reserve("a", "t2") {
		t.Error("second job of a is alone")
	}
	if !reserve("b", "t3") {
		t.Error("first job of b is not alone")
	}
	q.submit(job{accountID: "a", target: "t1"})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	j, ok := q.take(ctx)
	if !ok {
		t.Fatal("no job to take")
	}
	q.done(j)
	q.release(job{accountID: "a", target: "t2"})
	if !reserve("a", "t4") {
		t.Error("job of a after the others ended is not alone")
	}
}
