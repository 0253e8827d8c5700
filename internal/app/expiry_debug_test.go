package app

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/inventory"
)

func TestExpiryDebugTmp(t *testing.T) {
	kind := os.Getenv("EXPIRY_DEBUG_KIND")
	env := newExpiryEnv(t, kind, 1_000_000)
	ctx := context.Background()
	now := env.start.Add(time.Minute)
	env.clk.Set(now)
	t0 := time.Now()
	n := 0
	if err := env.a.store.EachExpiringBetween(ctx, now.Add(-7*24*time.Hour), now.Add(90*24*time.Hour), func(*inventory.Certificate) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	t.Logf("read %d certs in %s", n, time.Since(t0))
	t0 = time.Now()
	res, err := env.a.lifecycle.CheckExpiry(ctx, time.Time{})
	t.Logf("first run %+v %v in %s", res, err, time.Since(t0))
	t0 = time.Now()
	res, err = env.a.lifecycle.CheckExpiry(ctx, time.Time{})
	t.Logf("second run (all alerts exist) %+v %v in %s", res, err, time.Since(t0))
}
