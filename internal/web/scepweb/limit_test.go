package scepweb

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/scep"
)

// refusingService refuses every PKIOperation and counts the ones it saw.
type refusingService struct{ ops int }

func (s *refusingService) CACaps(context.Context, string) (string, error) { return "", nil }
func (s *refusingService) CACert(context.Context, string) ([]byte, error) { return nil, nil }
func (s *refusingService) PKIOperation(_ context.Context, _ string, p scep.Peer, _ []byte) ([]byte, bool, error) {
	s.ops++
	return []byte("failure"), true, nil
}

// TestRefusedPKIOperationsAreLimited: once a source spent its budget of
// refused PKIOperations it is answered 429 with Retry-After, and its
// messages no longer reach the service (no RSA decryption); another
// source is unaffected, and loopback is exempt unless asked.
func TestRefusedPKIOperationsAreLimited(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, loopback := range []bool{true, false} {
		svc := &refusingService{}
		h, err := New(Deps{Log: slog.New(slog.DiscardHandler), Service: svc, Clock: func() time.Time { return now },
			RefusedPerSecond: 1, RefusedBurst: 3, LimitLoopback: loopback})
		if err != nil {
			t.Fatal(err)
		}
		post := func(remote string) *httptest.ResponseRecorder {
			r := httptest.NewRequest("POST", "/scep/mdm?operation=PKIOperation", strings.NewReader("x"))
			r.RemoteAddr = remote
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			return w
		}
		statuses := []int{}
		for range 5 {
			statuses = append(statuses, post("127.0.0.1:4000").Code)
		}
		if !loopback {
			for i, st := range statuses {
				if st != http.StatusOK {
					t.Errorf("loopback exempt: request %d: %d, want 200", i, st)
				}
			}
			continue
		}
		for i, st := range statuses {
			if want := map[bool]int{true: http.StatusOK, false: http.StatusTooManyRequests}[i < 3]; st != want {
				t.Errorf("request %d: status %d, want %d", i, st, want)
			}
		}
		if svc.ops != 3 {
			t.Errorf("the service decrypted %d messages, want 3 (the 429s stop before it)", svc.ops)
		}
		w := post("127.0.0.1:4000")
		if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "1" {
			t.Errorf("over budget: %d Retry-After %q, want 429 and 1", w.Code, w.Header().Get("Retry-After"))
		}
		if w := post("192.0.2.7:4000"); w.Code != http.StatusOK || w.Header().Get("X-Request-Id") == "" {
			t.Errorf("another source: %d, request ID %q", w.Code, w.Header().Get("X-Request-Id"))
		}
		now = now.Add(2 * time.Second)
		if w := post("127.0.0.1:4000"); w.Code != http.StatusOK {
			t.Errorf("after the refill: %d, want 200", w.Code)
		}
	}
}
