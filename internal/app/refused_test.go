package app

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/store"
)

// tClientFrom returns a client of in whose connections come from the
// loopback address ip (127.0.0.0/8 is all loopback on Linux).
func tClientFrom(in *tInstance, ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: d.DialContext, TLSClientConfig: in.tlsConfig().Clone(), ForceAttemptHTTP2: true,
		MaxIdleConnsPerHost: 16,
	}}
}

func tGet(t *testing.T, c *http.Client, url, auth string) (int, http.Header) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Errorf("GET %s: %v", url, err)
		return 0, nil
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header
}

// TestUnauthenticatedFloodIsBounded is finding 6 of issue 13: 2,000
// unauthenticated requests from one client leave a few audit events that
// count them, not 2,000 rows; past its burst the client gets 429 with
// Retry-After; a client at another address is served meanwhile.
func TestUnauthenticatedFloodIsBounded(t *testing.T) {
	t.Parallel()
	in := tNewServer(t, "")
	ctx := context.Background()
	from := tAuditHead(t, in)

	const total = 2000
	flood := tClientFrom(in, "127.0.0.1")
	deadline := time.Now().Add(60 * time.Second)
	var next atomic.Int64
	var mu sync.Mutex
	statuses := map[int]int{}
	retryAfter := ""
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= total && time.Now().Before(deadline) {
				code, h := tGet(t, flood, in.l.HTTPSURL+"/api/v1/cas", "Bearer cwt_0123456789abcdef_bm90LWEtcmVhbC1zZWNyZXQtYXQtYWxsLXJlYWxseQ")
				mu.Lock()
				statuses[code]++
				if code == http.StatusTooManyRequests && retryAfter == "" {
					retryAfter = h.Get("Retry-After")
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if statuses[http.StatusUnauthorized]+statuses[http.StatusTooManyRequests] != total {
		t.Fatalf("statuses %v: want %d answers, all 401 or 429 (within 60s)", statuses, total)
	}
	if statuses[http.StatusTooManyRequests] == 0 {
		t.Errorf("no 429 among %d refused requests from one source: %v", total, statuses)
	}
	if n, err := strconv.Atoi(retryAfter); err != nil || n < 1 {
		t.Errorf("429 with Retry-After %q, want whole seconds", retryAfter)
	}
	// Another address is served meanwhile, with a token, or refused
	// normally without one.
	other := tClientFrom(in, "127.0.0.2")
	if code, _ := tGet(t, other, in.l.HTTPSURL+"/api/v1/cas", in.bearer()); code != http.StatusOK {
		t.Errorf("an authenticated request from 127.0.0.2 during the flood: %d, want 200", code)
	}
	if code, _ := tGet(t, other, in.l.HTTPSURL+"/api/v1/cas", ""); code != http.StatusUnauthorized {
		t.Errorf("an unauthenticated request from 127.0.0.2: %d, want 401", code)
	}
	flood.CloseIdleConnections()
	other.CloseIdleConnections()

	// Stopping writes the counts of the minute under way.
	if err := in.stop(); err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(ctx, DBURL(in.cfg), tLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var rows, anonRows int
	counts := map[string]int64{}
	err = db.EachAuditEvent(ctx, from+1, func(ev *audit.Event) error {
		rows++
		if ev.Principal != "anonymous" {
			return nil
		}
		anonRows++
		if ev.Action != "api.unauthenticated" {
			t.Errorf("anonymous event %s %s: want only api.unauthenticated", ev.Action, ev.Target)
		}
		var d struct {
			Count int64 `json:"count"`
		}
		if err := json.Unmarshal(ev.Details, &d); err != nil {
			return err
		}
		counts[ev.Source] += d.Count
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// One source and at most a minute boundary or two crossed: a few rows.
	if anonRows > 4 {
		t.Errorf("%d audit events for the refused requests, want at most 4", anonRows)
	}
	if counts["127.0.0.1"] != total || counts["127.0.0.2"] != 1 {
		t.Errorf("refusals counted per source %v, want 127.0.0.1: %d, 127.0.0.2: 1", counts, total)
	}
	t.Logf("%d requests -> %v; %d audit rows in all since the start, %d for the refusals", total, statuses, rows, anonRows)
}
