package app

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/lifecycle"
	"github.com/certwright/certwright/internal/notify/notifytest"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// TestJobsRunOnceAcrossReplicas: two replicas on one database, their
// schedulers' ticks driven through a simulated day on a fake clock (both
// replicas ticking at the same moments, the worst case): the expiry check
// and the alert delivery each run once per interval, on one replica or
// the other, never on both; an alert raised once reaches the webhook
// receiver once; jobs list names the replica that ran each job.
func TestJobsRunOnceAcrossReplicas(t *testing.T) {
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			cfg := tConfig(t, be.dbURL(t))
			rc := tStartReceivers(t, notifytest.WebhookOptions{})
			clk := clock.NewFake(time.Now().UTC().Truncate(time.Second))
			tInit(t, cfg, clk)
			tAlertConfig(t, cfg, rc)
			cfg.Alerts.Default = []string{"ops-hook"}
			// Intervals the real tickers do not reach during the test: the
			// loop below is the only scheduled run.
			const step = 10 * time.Minute
			cfg.Lifecycle.DeliveryInterval = "10m"
			cfg.Lifecycle.ExpiryCheckInterval = "1h"
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			replicas := map[string]*tInstance{}
			for _, name := range []string{"replica-a", "replica-b"} {
				c := *cfg
				c.ReplicaName = name
				replicas[name] = tStart(t, &c, clk)
			}
			a := replicas["replica-a"]
			ctx := context.Background()
			// Each job ran once at start, on one replica: the other found
			// it fresh.
			for _, job := range []string{"expiry-check", "alert-delivery"} {
				deadline := time.Now().Add(20 * time.Second)
				for {
					st, err := a.app.store.GetJob(ctx, job)
					if err == nil && st.Outcome == lifecycle.OutcomeOK {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("job %s did not run at start: %+v, %v", job, st, err)
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
			cert := tSignDays(t, a, "internal_service", 2, "replicas.internal.test")

			ran := map[string]map[string]int{"expiry-check": {}, "alert-delivery": {}}
			for k := 1; k <= int(24*time.Hour/step); k++ {
				clk.Advance(step)
				for _, job := range []string{"expiry-check", "alert-delivery"} {
					var mu sync.Mutex
					var on []string
					var wg sync.WaitGroup
					for name, in := range replicas {
						wg.Go(func() {
							st, err := in.app.scheduler.RunDue(ctx, job)
							if err != nil {
								t.Errorf("%s on %s: %v", job, name, err)
								return
							}
							if st.Outcome == lifecycle.OutcomeError {
								t.Errorf("%s on %s: %s", job, name, st.Detail)
							}
							if st.Outcome != lifecycle.OutcomeSkipped {
								mu.Lock()
								on = append(on, name)
								mu.Unlock()
							}
						})
					}
					wg.Wait()
					if len(on) > 1 {
						t.Fatalf("step %d: %s ran on %v in one interval", k, job, on)
					}
					for _, name := range on {
						ran[job][name]++
					}
					if len(on) == 0 && job == "alert-delivery" {
						// A run that a raised alert triggered (not
						// counted here) has it, or had it.
						waitStarted(t, a, job, clk.Now())
					}
				}
			}
			total := func(job string) int { return ran[job]["replica-a"] + ran[job]["replica-b"] }
			if n := total("expiry-check"); n != 24 {
				t.Errorf("expiry-check ran %d times in a day of 1h intervals (%v), want 24", n, ran["expiry-check"])
			}
			// A raised alert triggers a delivery run on the replica that
			// raised it: a scheduled run right after finds it fresh.
			if n := total("alert-delivery"); n < 24*6/2 || n > 24*6 {
				t.Errorf("alert-delivery ran %d times in a day of 10m intervals (%v), want 144 less the triggered runs", n, ran["alert-delivery"])
			}
			t.Logf("runs per replica: %v", ran)
			// The run history holds the same runs, and the one at start,
			// each with the replica that ran it.
			var hist apitypes.JobRunList
			replicas["replica-b"].must(http.StatusOK, "GET", "/api/v1/jobs/runs?job=expiry-check&since=25h&limit=1000", nil, &hist)
			recorded := map[string]int{}
			for _, r := range hist.Runs {
				recorded[r.Replica]++
			}
			extra := 0
			for name := range replicas {
				d := recorded[name] - ran["expiry-check"][name]
				if d < 0 || d > 1 {
					t.Errorf("expiry-check: the history records %d runs on %s, %d ran there after start", recorded[name], name, ran["expiry-check"][name])
				}
				extra += d
			}
			if len(hist.Runs) != total("expiry-check")+1 || extra != 1 {
				t.Errorf("expiry-check: %d runs in the history (%v), want the %d scheduled and the one at start", len(hist.Runs), recorded, total("expiry-check"))
			}

			var list apitypes.AlertList
			a.must(http.StatusOK, "GET", "/api/v1/alerts?limit=100", nil, &list)
			raised := map[string]bool{}
			ofCert := 0
			for _, al := range list.Alerts {
				if al.Serial == cert.Serial {
					ofCert++
				}
				raised[al.ID] = true
				for _, d := range al.Deliveries {
					if d.Status != lifecycle.DeliverySent || d.Attempts != 1 {
						t.Errorf("alert %s to %s: %s after %d attempts (%s)", al.ID, d.Channel, d.Status, d.Attempts, d.LastError)
					}
				}
			}
			if ofCert < 2 {
				t.Fatalf("%d alerts for the certificate, want the 7-day and the 1-day ones", ofCert)
			}
			got := map[string]int{}
			for _, h := range rc.hook.Requests() {
				var al lifecycle.Alert
				if err := json.Unmarshal(h.Alert, &al); err != nil {
					t.Fatal(err)
				}
				got[al.ID]++
			}
			for id := range raised {
				if got[id] != 1 {
					t.Errorf("alert %s reached the webhook %d times, want once", id, got[id])
				}
			}
			t.Logf("%d alerts raised (%d of the certificate), each delivered once", len(raised), ofCert)

			var jobs apitypes.JobList
			replicas["replica-b"].must(http.StatusOK, "GET", "/api/v1/jobs", nil, &jobs)
			for _, j := range jobs.Jobs {
				if j.Name != "expiry-check" {
					continue
				}
				st, err := a.app.store.GetJob(ctx, j.Name)
				if err != nil {
					t.Fatal(err)
				}
				if j.Replica == "" || j.Replica != st.Replica {
					t.Errorf("jobs list: %s last ran on %q, the job's record says %q", j.Name, j.Replica, st.Replica)
				}
			}
		})
	}
}

// waitStarted waits until in's record of job says a run started at at.
func waitStarted(t *testing.T, in *tInstance, job string, at time.Time) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := in.app.store.GetJob(context.Background(), job)
		if err == nil && st.StartedAt.Equal(at) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no run of %s at %v: the last started %v (%v)", job, at, st, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRenewalLostToAnotherReplica: two replicas renew the same
// auto-renewed certificate from the same snapshot at once, and once more
// from the stale snapshot after: one renewal wins, the others are
// "renewed elsewhere" (lifecycle.ErrElsewhere), which records no failure,
// no backoff and raises no renewal_failed alert.
func TestRenewalLostToAnotherReplica(t *testing.T) {
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			cfg := tConfig(t, be.dbURL(t))
			clk := clock.Real{}
			tInit(t, cfg, clk)
			var rs []*tInstance
			for _, name := range []string{"replica-a", "replica-b"} {
				c := *cfg
				c.ReplicaName = name
				rs = append(rs, tStart(t, &c, clk))
			}
			rs[0].tUseMachineAdmin(t)
			var issued apitypes.IssuedCertificate
			rs[0].must(http.StatusCreated, "POST", "/api/v1/certificates/issue", apitypes.IssueRequest{
				Profile: "web_server", CommonName: "twice.example.internal", DNSNames: []string{"twice.example.internal"}, AutoRenew: true,
			}, &issued)
			ctx := context.Background()
			snap, err := rs[0].app.store.GetCertificate(ctx, issued.Serial)
			if err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			var won int
			var lost []error
			var wg sync.WaitGroup
			renew := func(in *tInstance) {
				c := *snap
				_, err := in.app.lifecycle.Renew(ctx, &c, lifecycle.RenewOptions{Kind: "auto"})
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					won++
				} else {
					lost = append(lost, err)
				}
			}
			for _, in := range rs {
				wg.Go(func() { renew(in) })
			}
			wg.Wait()
			renew(rs[1]) // stale snapshot: refused before signing
			if won != 1 || len(lost) != 2 {
				t.Fatalf("%d renewals won, %d lost (%v); want 1 and 2", won, len(lost), lost)
			}
			for _, err := range lost {
				if !errors.Is(err, lifecycle.ErrElsewhere) || !errors.Is(err, lifecycle.ErrConflict) {
					t.Errorf("lost renewal: %v, want ErrElsewhere", err)
				}
			}
			after, err := rs[1].app.store.GetCertificate(ctx, issued.Serial)
			if err != nil {
				t.Fatal(err)
			}
			if after.RenewedBy == "" || after.RenewFailures != 0 || after.RenewError != "" || !after.RenewRetryAt.IsZero() {
				t.Errorf("after the race: renewed by %q, %d failures, error %q, retry at %v", after.RenewedBy, after.RenewFailures, after.RenewError, after.RenewRetryAt)
			}
			if n, err := rs[0].app.store.CountAlerts(ctx, lifecycle.AlertRenewalFailed, "", time.Time{}); err != nil || n != 0 {
				t.Errorf("%d renewal_failed alerts (%v), want none", n, err)
			}
		})
	}
}
