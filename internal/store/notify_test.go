package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/store"
	"github.com/certwright/certwright/internal/store/storetest"
)

// TestNoticePayloadBound: a notice lists up to MaxNoticeSerials serials of
// the longest kind within PostgreSQL's payload limit, its signature
// included; more become "all".
func TestNoticePayloadBound(t *testing.T) {
	t.Parallel()
	serials := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("%040x", i) // 20-byte serials: the longest
		}
		return out
	}
	ca := strings.Repeat("c", 64)
	for _, tt := range []struct {
		n    int
		list bool
	}{{1, true}, {store.MaxNoticeSerials, true}, {store.MaxNoticeSerials + 1, false}, {100_000, false}} {
		p, err := store.NoticePayload(store.Notice{Kind: store.NoticeRevoked, CA: ca, Serials: serials(tt.n), Origin: "0123456789abcdef"})
		if err != nil {
			t.Fatalf("%d serials: %v", tt.n, err)
		}
		if len(p)+store.NoticeMACLen > store.MaxNoticePayload {
			t.Errorf("%d serials: payload of %d bytes", tt.n, len(p))
		}
		var n store.Notice
		if err := json.Unmarshal([]byte(p), &n); err != nil {
			t.Fatal(err)
		}
		if tt.list && (n.All || len(n.Serials) != tt.n) || !tt.list && (!n.All || n.Serials != nil) || n.CA != ca {
			t.Errorf("%d serials: decoded %d serials, all %v, CA %q", tt.n, len(n.Serials), n.All, n.CA)
		}
	}
	// A CA ID too long for the limit is an error, not a truncated notice.
	if _, err := store.NoticePayload(store.Notice{Kind: store.NoticeCA, CA: strings.Repeat("x", 9000)}); err == nil {
		t.Error("a 9000-byte notice was accepted")
	}
}

// TestCatchUpLateCommit: the catch-up reports every revocation exactly
// once, in the first catch-up after its commit, whatever the order in
// which transactions wrote and committed: a revocation written before a
// catch-up but committed after it (which a "sequence above the last seen"
// or a timestamp cut-off would pass by) comes in the next one; one written
// before the store opened but committed after comes in the first.
func TestCatchUpLateCommit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := storetest.PostgresSchema(t, storetest.PostgresURL(t))
	w0, err := store.Open(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w0.Close()
	raw := store.Write(w0)
	insert := `INSERT INTO revocations (serial, ca_id, revoked_at, reason, revoked_by, not_after, ca)
		VALUES ($1, $2, now(), 1, 'test', now() + interval '1 day', false)`
	// Written before the listening store opens, committed after.
	early, err := raw.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer early.Rollback()
	if _, err := early.ExecContext(ctx, insert, "e0", "ca1"); err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := early.Commit(); err != nil {
		t.Fatal(err)
	}

	late, err := raw.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer late.Rollback()
	if _, err := late.ExecContext(ctx, insert, "a1", "ca1"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	if _, err := raw.ExecContext(ctx, insert, "b2", "ca2"); err != nil {
		t.Fatal(err)
	}

	want := func(step string, got map[string][]string, want map[string][]string) {
		t.Helper()
		for k := range got {
			slices.Sort(got[k])
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: catch-up reported %v, want %v", step, got, want)
		}
	}
	got, all, snap, err := store.CatchUp(ctx, db, store.BootSnapshot(db))
	if err != nil {
		t.Fatal(err)
	}
	// a1 is written but not committed: not yet.
	want("first", got, map[string][]string{"ca1": {"e0"}, "ca2": {"b2"}})
	if err := late.Commit(); err != nil {
		t.Fatal(err)
	}
	got, _, snap, err = store.CatchUp(ctx, db, snap)
	if err != nil {
		t.Fatal(err)
	}
	want("after the late commit", got, map[string][]string{"ca1": {"a1"}})
	got, _, snap, err = store.CatchUp(ctx, db, snap)
	if err != nil {
		t.Fatal(err)
	}
	want("with nothing new", got, map[string][]string{})

	// Past MaxNoticeSerials for one CA: "all" for it, the others listed.
	tx, err := raw.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	for i := range store.MaxNoticeSerials + 1 {
		if _, err := tx.ExecContext(ctx, insert, fmt.Sprintf("m%04d", i), "many"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tx.ExecContext(ctx, insert, "c3", "ca3"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	got, all, _, err = store.CatchUp(ctx, db, snap)
	if err != nil {
		t.Fatal(err)
	}
	want("many", got, map[string][]string{"ca3": {"c3"}})
	if !all["many"] || len(all) != 1 {
		t.Errorf("too many for one notice: all = %v, want only CA many", all)
	}
}
