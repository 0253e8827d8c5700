package app

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/config"
	"github.com/certwright/certwright/internal/store"
)

// The settings every replica sharing a database must agree on (README
// "Several replicas"): those whose difference would make replicas undo
// each other's work or treat the same data differently. A replica keeps
// them in its registry row; one that disagrees with a running replica is
// refused at start, and a reload that would make it disagree is refused.
//
//   - public_http_url, tls_names, acme.base_url, default_ca: what
//     certificates and the shared server certificate carry, and where
//     clients are sent (different tls_names made replicas replace each
//     other's server certificate);
//   - revocation.crl_lifetime, ocsp_response_lifetime,
//     ocsp_responder_lifetime: the shared CRLs and OCSP responders are
//     built by whichever replica finds them due;
//   - lifecycle.alert_thresholds, ca_alert_thresholds, delivery_attempts,
//     revoke_superseded_after: the shared alerts and renewals;
//   - alerts.channels (each channel, as a digest: URLs and headers may
//     hold tokens), alerts.routes, alerts.default: a replica without a
//     channel fails that channel's deliveries for good;
//
// The digests are HMAC-SHA256 under a key every replica derives from the
// KEK (replicaSettingsKey): the registry and the refusals show them, and
// a database reader without the KEK cannot test guesses of a channel's
// URL or token against them.
//   - auth.oidc: each provider's issuer, clients and role mappings.
//
// Besides them the registry keeps each replica's replica_name
// (Config.Replica), which must differ from every running replica's
// instead: two live replicas under one name would take each other's ACME
// claims at start and share job leases. It is left out of the digest.
//
// Settings a replica may hold on its own: listen addresses, db, log_level,
// metrics, store_timeout, shutdown_delay, the limits of requests and ACME
// validations (per replica anyway), job intervals.

// agreedSettings returns cfg's agreed settings by name. Secret-bearing
// ones are digests ("hmac-sha256:...") under cfg.ReplicaSettingsKey.
func agreedSettings(cfg *config.Config) map[string]string {
	key := cfg.ReplicaSettingsKey
	crl, ocspResp, responder := cfg.Revocation.Durations()
	lc := cfg.Lifecycle.Durations()
	s := map[string]string{
		"public_http_url":                    strings.TrimRight(cfg.PublicHTTPURL, "/"),
		"tls_names":                          strings.Join(normNames(cfg.TLSNames), ","),
		"acme.base_url":                      strings.TrimRight(cfg.ACME.BaseURL, "/"),
		"default_ca":                         cfg.DefaultCA,
		"revocation.crl_lifetime":            crl.String(),
		"revocation.ocsp_response_lifetime":  ocspResp.String(),
		"revocation.ocsp_responder_lifetime": responder.String(),
		"lifecycle.alert_thresholds":         durations(lc.Thresholds),
		"lifecycle.ca_alert_thresholds":      durations(lc.CAThresholds),
		"lifecycle.delivery_attempts":        strconv.Itoa(cfg.Lifecycle.DeliveryAttempts),
		"lifecycle.revoke_superseded_after":  lc.SupersedeAfter.String(),
		"alerts.routes":                      settingDigest(key, cfg.Alerts.Routes),
		"alerts.default":                     strings.Join(cfg.Alerts.Default, ","),
	}
	s[replicaNameSetting] = cfg.Replica()
	for _, c := range cfg.Alerts.Channels {
		s["alerts.channels["+c.Name+"]"] = settingDigest(key, c)
	}
	for _, p := range cfg.Auth.OIDC {
		k := "auth.oidc[" + p.Name + "]"
		s[k+".issuer"] = p.Issuer
		s[k+".client_id"] = p.ClientID
		s[k+".cli_client_id"] = p.CLIClientID
		s[k+".roles"] = settingDigest(key, p.Roles)
	}
	return s
}

// replicaNameSetting is the registry's entry of a replica's
// replica_name: unique among running replicas, not agreed.
const replicaNameSetting = "replica_name"

// configDigest is the digest of agreed settings s, the same for the same
// settings on any replica (whatever their names).
func configDigest(s map[string]string) string {
	agreed := maps.Clone(s)
	delete(agreed, replicaNameSetting)
	b, _ := json.Marshal(agreed) // map keys are sorted
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// settingDigest stands for a setting that may hold secrets: its
// HMAC-SHA256 under key, cut to 128 bits.
func settingDigest(key []byte, v any) string {
	b, _ := json.Marshal(v)
	m := hmac.New(sha256.New, key)
	m.Write(b)
	return "hmac-sha256:" + hex.EncodeToString(m.Sum(nil)[:16])
}

// normNames is a list of host names and IP addresses in one spelling, sorted.
func normNames(names []string) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			out = append(out, ip.String())
		} else {
			out = append(out, strings.ToLower(n))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func durations(ds []time.Duration) string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.String()
	}
	return strings.Join(out, ",")
}

// DisagreementError refuses a configuration whose agreed settings differ
// from those of a running replica.
type DisagreementError struct {
	// Replica is the other replica's name and ID; Seen how long ago it
	// last beat.
	Replica string
	Seen    time.Duration
	// Settings are the names of the settings that differ, sorted; Values
	// describe each difference ("here X, there Y"; digests for secrets).
	Settings []string
	Values   []string
}

func (e *DisagreementError) Error() string {
	return fmt.Sprintf("configuration differs from replica %s (last seen %s ago) in %s: %s; every replica sharing the database must agree on these settings (README \"Several replicas\"): fix this configuration, or stop every replica and start them all with the new settings",
		e.Replica, e.Seen.Round(time.Second), strings.Join(e.Settings, ", "), strings.Join(e.Values, "; "))
}

// SameNameError refuses a replica whose replica_name a running replica
// already has.
type SameNameError struct {
	// Name is the replica_name; Replica the running one's registry name
	// and ID, Seen how long ago it last beat.
	Name, Replica string
	Seen          time.Duration
	// ID and LastSeen (the database's clock) are the running one's.
	ID       string
	LastSeen time.Time
}

func (e *SameNameError) Error() string {
	return fmt.Sprintf("replica_name %q is already that of running replica %s (last seen %s ago): two replicas under one name take over each other's ACME work and job leases; give each replica its own replica_name (README \"Several replicas\"), or stop the other one first",
		e.Name, e.Replica, e.Seen.Round(time.Second))
}

// checkAgreement returns a *SameNameError for the first of live under
// mine's replica_name, else a *DisagreementError for the first whose
// agreed settings differ from mine, nil when all agree.
func checkAgreement(mine map[string]string, live []*store.Replica, now time.Time) error {
	if name := mine[replicaNameSetting]; name != "" {
		for _, r := range live {
			if r.Settings[replicaNameSetting] == name {
				return &SameNameError{Name: name, Replica: r.Name + " (" + r.ID + ")", Seen: now.Sub(r.LastSeen), ID: r.ID, LastSeen: r.LastSeen}
			}
		}
	}
	digest := configDigest(mine)
	for _, r := range live {
		if r.ConfigDigest == digest {
			continue
		}
		e := &DisagreementError{Replica: r.Name + " (" + r.ID + ")", Seen: now.Sub(r.LastSeen)}
		keys := slices.Sorted(maps.Keys(mine))
		for k := range r.Settings {
			if _, ok := mine[k]; !ok {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range slices.Compact(keys) {
			if k == replicaNameSetting {
				continue
			}
			here, okHere := mine[k]
			there, okThere := r.Settings[k]
			if here == there && okHere == okThere {
				continue
			}
			e.Settings = append(e.Settings, k)
			e.Values = append(e.Values, fmt.Sprintf("%s: here %s, there %s", k, describe(here, okHere), describe(there, okThere)))
		}
		if len(e.Settings) == 0 {
			// Same settings, another digest: a build that computes it
			// otherwise.
			e.Settings = []string{"(the digest of the settings; is the other replica another version?)"}
		}
		return e
	}
	return nil
}

func describe(v string, ok bool) string {
	if !ok {
		return "unset"
	}
	return strconv.Quote(v)
}

// sameNameWait is how long a replica whose replica_name a registered one
// has waits for that one's next heartbeat before taking it for its own
// previous life, killed moments ago: a heartbeat and a margin.
const sameNameWait = store.ReplicaHeartbeat + 2*time.Second

// register adds this replica to the registry (registerReplica). A
// running replica under the same replica_name refuses it, unless that
// one is this replica's previous life, killed less than
// store.ReplicaLive ago: one that does not beat within sameNameWait is
// taken for dead, its row removed, and the registration tried again.
func (a *App) register(ctx context.Context) error {
	err := a.registerReplica(ctx)
	var same *SameNameError
	if !errors.As(err, &same) {
		return err
	}
	a.log.Warn("the registry holds a running replica under this replica_name; waiting for its next heartbeat to tell a running replica from this one's previous life",
		"replica_name", same.Name, "other", same.Replica, "wait", sameNameWait)
	t := time.NewTimer(sameNameWait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return err
	case <-t.C:
	}
	live, lerr := a.store.LiveReplicas(ctx, a.self.id)
	if lerr != nil {
		return errors.Join(err, lerr)
	}
	for _, r := range live {
		if r.ID == same.ID && r.LastSeen.After(same.LastSeen) {
			return err // it beats: a running replica
		}
	}
	a.log.Warn("taking the replica under this replica_name for this replica's previous life: it has not beaten since; removing its registry row",
		"replica_name", same.Name, "other", same.Replica)
	if rerr := a.store.RemoveReplica(ctx, same.ID); rerr != nil {
		return errors.Join(err, rerr)
	}
	return a.registerReplica(ctx)
}
