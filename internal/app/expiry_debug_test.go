package app

import (
	"testing"
	"time"
)

func TestExpiryDebugTmp(t *testing.T) {
	t0 := time.Now()
	n := 0
	genInventory(time.Now(), 200_000, 1000, 1, func(b *invBatch) error { n += len(b.serial); return nil })
	t.Logf("gen %d in %s", n, time.Since(t0))
	newExpiryEnv(t, "sqlite", 200_000)
}
