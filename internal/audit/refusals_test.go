package audit_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/clock"
)

type refusalDetails struct {
	Count    int64            `json:"count"`
	Statuses map[string]int64 `json:"statuses"`
	Reasons  map[string]int64 `json:"reasons"`
	Routes   map[string]int64 `json:"routes"`
	Paths    map[string]int64 `json:"paths"`
}

func refusalEvents(t *testing.T, evs []audit.Event) map[string]refusalDetails {
	t.Helper()
	out := map[string]refusalDetails{}
	for _, ev := range evs {
		if ev.Action != audit.ActionUnauthenticated {
			continue
		}
		if ev.Principal != "anonymous" || ev.Outcome != audit.Denied || len(ev.Target) > audit.MaxTarget {
			t.Errorf("event %+v", ev)
		}
		var d refusalDetails
		if err := json.Unmarshal(ev.Details, &d); err != nil {
			t.Fatal(err)
		}
		if _, dup := out[ev.Source]; dup {
			t.Errorf("two events for source %s", ev.Source)
		}
		out[ev.Source] = d
	}
	return out
}

// TestRefusalCounter: refused anonymous requests become one event per
// source and minute, written only once the minute is over, with the
// sources, reasons and paths of one minute bounded.
func TestRefusalCounter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := backends[0].open(t)
	clk := clock.NewFake(time.Date(2026, 3, 1, 12, 0, 5, 0, time.UTC))
	rc, err := audit.NewRefusalCounter(audit.RefusalCounterConfig{Clock: clk, MaxSources: 10}, db)
	if err != nil {
		t.Fatal(err)
	}
	long := "/api/v1/" + strings.Repeat("x", 5000)
	for i := range 2000 {
		rc.Add(audit.Refusal{Source: "192.0.2.1", Action: "ca.list", Path: long, Status: 401, Reason: fmt.Sprintf("bad token %d", i%50)})
	}
	for i := range 500 {
		rc.Add(audit.Refusal{Source: fmt.Sprintf("198.51.100.%d", i%200), Action: "ca.list", Path: "/api/v1/cas", Status: 429, Reason: "rate limited"})
	}
	if err := rc.Flush(ctx, false); err != nil {
		t.Fatal(err)
	}
	if seq, _, _ := db.AuditHead(ctx); seq != 0 {
		t.Fatalf("%d events written before the minute ended", seq)
	}
	clk.Advance(time.Minute)
	rc.Add(audit.Refusal{Source: "192.0.2.1", Action: "ca.list", Path: "/api/v1/cas", Status: 401, Reason: "no credentials"})
	if err := rc.Flush(ctx, false); err != nil {
		t.Fatal(err)
	}
	got := refusalEvents(t, events(t, db))
	if len(got) != 11 { // 10 sources one by one, the rest as "other"
		t.Fatalf("%d events for the first minute, want 11: %+v", len(got), got)
	}
	one := got["192.0.2.1"]
	if one.Count != 2000 || one.Statuses["401"] != 2000 || len(one.Reasons) > 9 || one.Reasons["other"] == 0 || one.Routes["ca.list"] != 2000 {
		t.Errorf("192.0.2.1: %+v", one)
	}
	for p := range one.Paths {
		if len(p) > 200 {
			t.Errorf("a %d-byte path kept in the breakdown", len(p))
		}
	}
	var total int64
	for _, d := range got {
		total += d.Count
	}
	if total != 2500 {
		t.Errorf("counted %d refusals in the first minute, want 2500", total)
	}
	// 198.51.100.0-8 (3 requests each) fill the 10 sources; the rest
	// are counted together.
	if other := got[audit.OtherSources]; other.Count != 500-9*3 || other.Statuses["429"] != other.Count {
		t.Errorf("other: %+v, want 473 refusals", other)
	}

	// Shutdown writes the current minute too.
	if err := rc.Flush(ctx, true); err != nil {
		t.Fatal(err)
	}
	evs := events(t, db)
	if n := len(evs); n != 12 {
		t.Fatalf("%d events after the final flush, want 12", n)
	}
	if last := evs[len(evs)-1]; last.Source != "192.0.2.1" || !strings.Contains(string(last.Details), `"count":1`) {
		t.Errorf("last event %+v", last)
	}
	if r := verify(t, db, newProvider(t)); !r.Intact {
		t.Fatalf("Verify: %+v", r.Problem)
	}
}
