package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/config"
	"github.com/certwright/certwright/internal/keys"
	"github.com/certwright/certwright/internal/keys/software"
)

// TestSettingDigestKeyed: an alert channel's digest in the replica
// registry is keyed by the KEK (a database reader cannot test guesses of
// its URL or headers), two replicas with the same KEK agree, and another
// KEK gives another digest.
func TestSettingDigestKeyed(t *testing.T) {
	t.Parallel()
	withKEK := func(kek byte) *config.Config {
		cfg := &config.Config{}
		cfg.Alerts.Channels = []config.ChannelConfig{{Name: "hook", Type: "webhook", URL: "https://hooks.example.test/x",
			Headers: map[string]string{"Authorization": "Bearer guessable"}}}
		soft, err := software.New(make32(kek), nil)
		if err != nil {
			t.Fatal(err)
		}
		key, err := soft.DeriveKey(keys.DeriveReplicaSettings)
		if err != nil {
			t.Fatal(err)
		}
		cfg.ReplicaSettingsKey = key
		return cfg
	}
	a, b, other := agreedSettings(withKEK(1)), agreedSettings(withKEK(1)), agreedSettings(withKEK(2))
	const k = "alerts.channels[hook]"
	plain, _ := json.Marshal(withKEK(1).Alerts.Channels[0])
	sum := sha256.Sum256(plain)
	if got := a[k]; strings.Contains(got, hex.EncodeToString(sum[:8])) || !strings.HasPrefix(got, "hmac-sha256:") {
		t.Errorf("digest %q: want an HMAC, not the plain SHA-256", got)
	}
	if !maps.Equal(a, b) || configDigest(a) != configDigest(b) {
		t.Error("two replicas with the same KEK disagree")
	}
	if a[k] == other[k] {
		t.Error("another KEK gives the same digest")
	}
}

func make32(b byte) []byte {
	k := make([]byte, 32)
	for i := range k {
		k[i] = b
	}
	return k
}

// TestReplicaRefusedOnSameReplicaName: a replica whose replica_name is a
// running replica's is refused at start (the two would take each other's
// ACME claims and job leases), naming the setting; another name starts.
func TestReplicaRefusedOnSameReplicaName(t *testing.T) {
	t.Parallel()
	cfg := tPGConfig(t)
	cfg.ReplicaName = "pki-1"
	clk := clock.Real{}
	tInit(t, cfg, clk)
	tStart(t, cfg, clk)

	twin := *cfg
	b, err := Open(context.Background(), &twin, tLogger(), clk)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err = b.Run(ctx, func(Listening) { t.Error("a second replica named pki-1 started"); cancel() })
	if err == nil || !strings.Contains(err.Error(), `replica_name "pki-1"`) {
		t.Fatalf("Run under a running replica's name: %v; want a refusal naming replica_name", err)
	}
	t.Logf("refused: %v", err)

	other := *cfg
	other.ReplicaName = "pki-2"
	tStart(t, &other, clk)
}

// TestReplicaRestartAfterKillUnderSameName: a replica restarted moments
// after it was killed finds its previous life in the registry under its
// replica_name; that one does not beat, so after a heartbeat's wait it
// is taken for dead, its row removed, and the replica starts.
func TestReplicaRestartAfterKillUnderSameName(t *testing.T) {
	t.Parallel()
	cfg := tPGConfig(t)
	cfg.ReplicaName = "pki-1"
	clk := clock.Real{}
	tInit(t, cfg, clk)
	raw := tRawDB(t, cfg)
	if _, err := raw.Exec(`INSERT INTO replicas (id, name, version, started_at, last_seen, config_digest, settings)
		VALUES ('killed', 'host:1', 'v', now(), now(), 'x', '{"replica_name": "pki-1"}')`); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	tStart(t, cfg, clk)
	if n := tCount(t, raw, `SELECT COUNT(*) FROM replicas WHERE id = 'killed'`); n != 0 {
		t.Errorf("the killed replica's row is still registered")
	}
	t.Logf("started %v after the killed replica's last heartbeat", time.Since(start).Round(time.Millisecond))
}
