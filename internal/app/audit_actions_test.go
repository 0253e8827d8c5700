package app

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/notify/notifytest"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// tAuditEvents returns the events after seq from, copied out of the
// store's buffers.
func tAuditEvents(t *testing.T, in *tInstance, from int64) []audit.Event {
	t.Helper()
	var out []audit.Event
	err := in.app.store.EachAuditEvent(context.Background(), from+1, func(ev *audit.Event) error {
		c := *ev
		c.Details, c.PrevHash, c.Hash = bytes.Clone(ev.Details), bytes.Clone(ev.PrevHash), bytes.Clone(ev.Hash)
		out = append(out, c)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func tAuditHead(t *testing.T, in *tInstance) int64 {
	t.Helper()
	seq, _, err := in.app.store.AuditHead(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

// tFindEvent returns the events with action, failing unless there are n.
func tFindEvents(t *testing.T, evs []audit.Event, action string, n int) []audit.Event {
	t.Helper()
	var out []audit.Event
	for _, ev := range evs {
		if ev.Action == action {
			out = append(out, ev)
		}
	}
	if len(out) != n {
		t.Fatalf("%d %s events, want %d: %+v", len(out), action, n, out)
	}
	return out
}

// TestJobRunAndAlertTestAreAudited: running a job and sending a test
// alert by hand leave an audit event naming who, what and how it ended,
// the failed delivery included.
func TestJobRunAndAlertTestAreAudited(t *testing.T) {
	t.Parallel()
	rc := tStartReceivers(t, notifytest.WebhookOptions{Status: http.StatusServiceUnavailable})
	cfg := tConfig(t, "")
	tInit(t, cfg, clock.Real{})
	tAlertConfig(t, cfg, rc)
	in := tStart(t, cfg, clock.Real{})
	from := tAuditHead(t, in)

	var job apitypes.Job
	in.must(http.StatusOK, "POST", "/api/v1/jobs/expiry-check/run", nil, &job)
	in.must(http.StatusOK, "POST", "/api/v1/alerts/test", apitypes.AlertTestRequest{Channel: "ops-mail"}, nil)
	if r := in.call("POST", "/api/v1/alerts/test", apitypes.AlertTestRequest{Channel: "ops-hook"}); r.status != http.StatusBadGateway {
		t.Fatalf("test alert to a failing webhook: %d %s, want 502", r.status, r.body)
	}

	evs := tAuditEvents(t, in, from)
	runs := tFindEvents(t, evs, "job.run", 1)
	if ev := runs[0]; ev.Principal != "admin" || ev.Target != "expiry-check" || ev.Outcome != audit.Success {
		t.Errorf("job.run event: %+v", ev)
	} else {
		var d map[string]any
		if err := json.Unmarshal(ev.Details, &d); err != nil || d["outcome"] != job.Outcome {
			t.Errorf("job.run details %s: want outcome %q (%v)", ev.Details, job.Outcome, err)
		}
	}
	tests := tFindEvents(t, evs, "alert.test", 3) // mail ok; webhook failed, also refused at the edge
	var sent, failed int
	for _, ev := range tests {
		if ev.Principal != "admin" {
			t.Errorf("alert.test by %q, want admin", ev.Principal)
		}
		switch {
		case ev.Target == "ops-mail" && ev.Outcome == audit.Success:
			sent++
		case ev.Target == "ops-hook" && ev.Outcome == audit.Failed:
			failed++
		}
	}
	if sent != 1 || failed != 1 {
		t.Errorf("alert.test events %+v: want one success to ops-mail and one failure to ops-hook", tests)
	}
}
