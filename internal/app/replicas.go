package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/config"
	"github.com/certwright/certwright/internal/store"
)

// Several replicas (README "Several replicas"): what one replica commits
// reaches the others' memory through the store's notification bus. The
// store applies the notices about its own caches (the token, ACME account
// and compromised-key generations, the CA generation the mTLS client
// certificate pools follow); applyNotice applies the rest. On SQLite there
// is one process and no bus.

// runReplicas applies the other replicas' notices until ctx ends.
func (a *App) runReplicas(ctx context.Context) error {
	return a.store.Listen(ctx, a.applyNotice)
}

// applyNotice applies one notice from another replica (or, for
// NoticeResync, the fact that some may have been missed).
func (a *App) applyNotice(ctx context.Context, n store.Notice) {
	switch n.Kind {
	case store.NoticeRevoked:
		switch {
		case n.All:
			a.revoker.RemoteRevoked(ctx, n.CA, nil)
		case len(n.Serials) > 0:
			a.revoker.RemoteRevoked(ctx, n.CA, n.Serials)
		}
	case store.NoticeCRL:
		if err := a.revoker.RemoteCRL(ctx, n.CA); err != nil {
			a.log.Error("load a CRL another replica stored", "ca", n.CA, "err", err)
		}
	case store.NoticeCA, store.NoticeResync:
		a.caCache.Invalidate()
		if err := a.revoker.CAsChanged(ctx, n.CA); err != nil {
			a.log.Error("reload CAs another replica changed", "ca", n.CA, "err", err)
		}
		if n.Kind == store.NoticeResync {
			a.revoker.RemoteResync(ctx)
		}
	}
}

// Phases of a running instance, for /readyz.
const (
	phaseStopped  int32 = iota // before Run, and after it returns
	phaseStarting              // listening, the revocation state not loaded yet
	phaseServing
	phaseDraining // shutting down: the load balancer should stop sending
)

// listenerGrace is how long ago the notification listener may have last
// caught up with the database before the replica reports itself not
// ready: it catches up every 2 s, a silent connection is given up after
// 3 s more, and until it has caught up again the replica may answer
// "good" for a certificate another replica revoked.
const listenerGrace = 5 * time.Second

// readiness is what /readyz reports beyond the store's answer.
type readiness struct {
	phase atomic.Int32
	// disagreed is why the configuration last loaded disagrees with a
	// running replica (a refused reload); nil when it does not.
	disagreed atomic.Pointer[string]
}

// notReady says why this replica should get no requests now, "" when it
// may (the store's own answer is checked by the health checks).
func (a *App) notReady() string {
	switch a.ready.phase.Load() {
	case phaseStopped, phaseStarting:
		return "starting"
	case phaseDraining:
		return "draining (shutting down)"
	}
	if why := a.ready.disagreed.Load(); why != nil {
		return *why
	}
	if behind := a.store.BusBehindFor(); behind > listenerGrace {
		return fmt.Sprintf("the notification listener last caught up with the database %s ago", behind.Round(time.Second))
	}
	return ""
}

// replicaSelf is this process's entry in the replica registry.
type replicaSelf struct {
	id, name string
	// settings are the agreed settings recorded in the registry.
	settings atomic.Pointer[map[string]string]
}

func newReplicaSelf(cfg *config.Config) *replicaSelf {
	var b [8]byte
	_, _ = rand.Read(b[:])
	host, err := os.Hostname()
	if err != nil {
		host = "unknown-host"
	}
	r := &replicaSelf{id: hex.EncodeToString(b[:]), name: host + ":" + strconv.Itoa(os.Getpid())}
	s := agreedSettings(cfg)
	r.settings.Store(&s)
	return r
}

// registerReplica adds this replica to the registry, refusing (with a
// *DisagreementError) when a running replica's agreed settings differ.
func (a *App) registerReplica(ctx context.Context) error {
	s := *a.self.settings.Load()
	err := a.store.RegisterReplica(ctx, &store.Replica{
		ID: a.self.id, Name: a.self.name, Version: buildVersion(),
		ConfigDigest: configDigest(s), Settings: s,
	}, func(live []*store.Replica) error {
		if err := a.sameKEK(ctx); err != nil {
			return err
		}
		return checkAgreement(s, live, time.Now())
	})
	if err != nil {
		return fmt.Errorf("app: refusing to start: %w", err)
	}
	return nil
}

// heartbeat keeps this replica's registry row current until ctx ends,
// every store.ReplicaHeartbeat on the database's clock. A row gone (a
// restore, or deleted by hand) is added again under the agreement rule.
func (a *App) heartbeat(ctx context.Context) error {
	if a.store.Dialect() != "postgres" {
		return nil
	}
	t := time.NewTicker(store.ReplicaHeartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		err := a.store.BeatReplica(ctx, a.self.id)
		if errors.Is(err, store.ErrNotFound) {
			if err = a.registerReplica(ctx); err != nil {
				why := "configuration disagrees with a running replica; see the server log"
				a.ready.disagreed.Store(&why)
			}
		}
		if err != nil && ctx.Err() == nil {
			a.log.Error("replica heartbeat failed; will retry", "err", err)
		}
	}
}

// removeReplica deletes this replica's registry row at shutdown.
func (a *App) removeReplica(ctx context.Context) {
	if err := a.store.RemoveReplica(ctx, a.self.id); err != nil {
		a.log.Warn("could not remove this replica from the registry; it ages out in 15 s", "err", err)
	}
}

// agreeReload checks next's agreed settings against the running replicas
// before a reload applies anything, and records them when they changed.
// A disagreement refuses the reload and marks this replica not ready (its
// configuration file now says something it cannot run with the others,
// and a restart would be refused); an agreeing reload clears the mark.
func (a *App) agreeReload(ctx context.Context, next *config.Config) error {
	s := agreedSettings(next)
	if maps.Equal(s, *a.self.settings.Load()) {
		a.ready.disagreed.Store(nil)
		return nil
	}
	err := a.store.UpdateReplica(ctx, &store.Replica{ID: a.self.id, ConfigDigest: configDigest(s), Settings: s},
		func(live []*store.Replica) error { return checkAgreement(s, live, time.Now()) })
	if err != nil {
		why := "configuration reload refused: it disagrees with a running replica; see the server log"
		if !errors.As(err, new(*DisagreementError)) {
			why = "configuration reload refused: the replica registry could not be updated; see the server log"
		}
		a.ready.disagreed.Store(&why)
		return err
	}
	a.self.settings.Store(&s)
	a.ready.disagreed.Store(nil)
	return nil
}

// buildVersion names this binary's build for the registry: the module
// version and VCS revision Go embeds, when known.
func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" {
			v += " " + s.Value
		}
	}
	return v
}

// Exclusive keys of the start-up steps replicas take one at a time.
const (
	auditKeyLock  = "audit-key"
	serverTLSLock = "server-tls"
)

// ensureAuditKey returns the audit key, creating it if the database has
// none. Replicas starting together take turns, so one creates it and the
// others load it: two keys would make each replica sign checkpoints the
// other's anchor refuses.
func (a *App) ensureAuditKey(ctx context.Context) (*audit.Key, error) {
	var k *audit.Key
	err := a.store.Exclusive(ctx, auditKeyLock, func(ctx context.Context) error {
		var err error
		k, err = a.audit.EnsureKey(ctx)
		return err
	})
	return k, err
}
