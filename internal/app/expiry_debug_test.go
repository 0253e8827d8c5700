package app

import (
	"context"
	"testing"
	"time"
)

func TestExpiryDebugTmp(t *testing.T) {
	env := newExpiryEnv(t, "sqlite", 200_000)
	read, _ := env.expiryThresholds(t)
	t.Logf("read thresholds %v", read)
	begin := env.start.Add(time.Minute)
	env.clk.Set(begin)
	for i := 0; i < 48; i++ {
		prev := env.clk.Now()
		env.clk.Advance(time.Hour)
		now := env.clk.Now()
		res, err := env.a.lifecycle.CheckExpiry(context.Background(), prev)
		if err != nil {
			t.Fatal(err)
		}
		want := 0
		for _, th := range read {
			want += env.countExpiring(t, prev.Add(th), now.Add(th))
		}
		if want != res.Examined {
			t.Errorf("iter %d: examined %d want %d", i, res.Examined, want)
			for _, th := range read {
				t.Logf("t=%v count %d", th, env.countExpiring(t, prev.Add(th), now.Add(th)))
			}
		}
	}
}
