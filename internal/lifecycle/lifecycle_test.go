package lifecycle

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/inventory"
)

var t0 = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func cert(notBefore, notAfter time.Time) *inventory.Certificate {
	return &inventory.Certificate{Serial: "01", NotBefore: notBefore, NotAfter: notAfter}
}

func TestCrossingPicksTheTightestThreshold(t *testing.T) {
	th := Days(30, 14, 7, 1)
	day := 24 * time.Hour
	for _, tc := range []struct {
		name        string
		left        time.Duration
		renewBefore time.Duration
		kind        AlertKind
		threshold   time.Duration
		ok          bool
	}{
		{"far", 40 * day, 0, "", 0, false},
		{"inside 30d", 20 * day, 0, AlertExpiring, 30 * day, true},
		{"2 days left is the 7-day threshold", 2 * day, 0, AlertExpiring, 7 * day, true},
		{"hours left", 3 * time.Hour, 0, AlertExpiring, day, true},
		{"expired", -time.Minute, 0, AlertExpired, 0, true},
		{"profile renewal threshold tighter", 9 * day, 10 * day, AlertRenewalDue, 10 * day, true},
		{"global threshold tighter than renewal", 5 * day, 10 * day, AlertExpiring, 7 * day, true},
		{"equal: the global threshold wins", 6 * day, 7 * day, AlertExpiring, 7 * day, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := cert(t0.Add(-90*day), t0.Add(tc.left))
			kind, threshold, at, ok := Crossing(c, t0, th, tc.renewBefore)
			if ok != tc.ok || kind != tc.kind || threshold != tc.threshold {
				t.Fatalf("Crossing = %s %v %v, want %s %v %v", kind, threshold, ok, tc.kind, tc.threshold, tc.ok)
			}
			if ok && !at.Equal(c.NotAfter.Add(-threshold)) {
				t.Errorf("crossed at %v, want notAfter-threshold %v", at, c.NotAfter.Add(-threshold))
			}
		})
	}
}

func TestWindow(t *testing.T) {
	day := 24 * time.Hour
	c := cert(t0, t0.Add(90*day))
	start, end := Window(c, 7)
	if !start.Equal(c.NotAfter.Add(-7*day)) || !end.Equal(start.Add(84*time.Hour)) {
		t.Errorf("90-day certificate, renew 7d before: window %v..%v", start, end)
	}
	// A short certificate renews in the first half of its last third.
	short := cert(t0, t0.Add(2*day))
	start, end = Window(short, 7)
	if !start.Equal(short.NotAfter.Add(-16*time.Hour)) || !end.Equal(short.NotAfter.Add(-8*time.Hour)) {
		t.Errorf("2-day certificate: window %v..%v", start, end)
	}
	// Renew now and revocation close the window at that moment.
	c.RenewNowAt = t0.Add(day)
	if _, end := Window(c, 7); !end.Equal(c.RenewNowAt) {
		t.Errorf("renew-now window ends %v, want %v", end, c.RenewNowAt)
	}
	c.Revocation = &inventory.Revocation{RevokedAt: t0.Add(2 * day)}
	if _, end := Window(c, 7); !end.Equal(c.Revocation.RevokedAt) {
		t.Errorf("revoked window ends %v, want %v", end, c.Revocation.RevokedAt)
	}
}

func TestManaged(t *testing.T) {
	for _, tc := range []struct {
		c    inventory.Certificate
		want bool
	}{
		{inventory.Certificate{}, false},
		{inventory.Certificate{AutoRenew: true}, true},
		{inventory.Certificate{Requester: "acme:default/acct1"}, true},
		{inventory.Certificate{Requester: "acme"}, false},
		{inventory.Certificate{RenewalKind: inventory.RenewalAgent}, true},
		{inventory.Certificate{RenewalKind: inventory.RenewalManual}, false},
		{inventory.Certificate{Tags: []string{"x", "agent"}}, true},
	} {
		if got := Managed(&tc.c); got != tc.want {
			t.Errorf("Managed(%+v) = %v, want %v", tc.c, got, tc.want)
		}
	}
}

func TestRouter(t *testing.T) {
	r := Router{
		Routes: []Route{
			{Tags: []string{"payments"}, Channels: []string{"pay-mail"}},
			{Kinds: []AlertKind{AlertCAExpiring}, Channels: []string{"pki", "slack"}},
			{Profiles: []string{"internal_service"}, CAs: []string{"issuing"}, Channels: []string{"slack"}},
		},
		Default: []string{"slack"},
	}
	for _, tc := range []struct {
		name string
		a    Alert
		want []string
	}{
		{"tag", Alert{Kind: AlertExpiring, Cert: &CertRef{Tags: []string{"payments"}, Profile: "web_server"}}, []string{"pay-mail"}},
		{"kind", Alert{Kind: AlertCAExpiring, Cert: &CertRef{CA: "root"}}, []string{"pki", "slack"}},
		{"profile and CA, each once", Alert{Kind: AlertExpiring, Cert: &CertRef{Profile: "internal_service", CA: "issuing", Tags: []string{"payments"}}}, []string{"pay-mail", "slack"}},
		{"profile without the CA falls to default", Alert{Kind: AlertExpiring, Cert: &CertRef{Profile: "internal_service", CA: "team"}}, []string{"slack"}},
		{"CA by ID", Alert{Kind: AlertExpiring, Cert: &CertRef{Profile: "internal_service", CAID: "issuing"}}, []string{"slack"}},
		{"no certificate, no tag match", Alert{Kind: AlertRevocationStale}, []string{"slack"}},
		{"test goes to its channel only", Alert{Kind: AlertTest, Subject: "test:pki"}, []string{"pki"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := r.Channels(tc.a); !slices.Equal(got, tc.want) {
				t.Errorf("Channels = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestMergeRanges(t *testing.T) {
	h := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Hour) }
	got := mergeRanges([][2]time.Time{{h(5), h(6)}, {h(0), h(1)}, {h(1), h(2)}, {h(10), h(12)}, {h(11), h(11)}})
	want := [][2]time.Time{{h(0), h(2)}, {h(5), h(6)}, {h(10), h(12)}}
	if !slices.Equal(got, want) {
		t.Errorf("merged = %v, want %v", got, want)
	}
}

func TestBackoffDoublesAndCaps(t *testing.T) {
	zero := bytes.NewReader(make([]byte, 1024))
	for n, want := range map[int]time.Duration{1: 30 * time.Second, 2: time.Minute, 3: 2 * time.Minute, 8: time.Hour, 50: time.Hour} {
		if got := DeliveryBackoff(n, zero); got != want {
			t.Errorf("DeliveryBackoff(%d) = %v, want %v", n, got, want)
		}
	}
	// Jitter adds at most a tenth.
	ones := bytes.NewReader(bytes.Repeat([]byte{0xff}, 1024))
	if got := DeliveryBackoff(1, ones); got < 30*time.Second || got > 33*time.Second {
		t.Errorf("jittered backoff %v outside 30s..33s", got)
	}
}

func TestThresholdLabel(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "expired", 7 * 24 * time.Hour: "7d", 12 * time.Hour: "12h0m0s"} {
		if got := ThresholdLabel(d); got != want {
			t.Errorf("ThresholdLabel(%v) = %q, want %q", d, got, want)
		}
	}
}
