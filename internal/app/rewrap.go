package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/keys"
	"github.com/certwright/certwright/internal/keys/software"
	"github.com/certwright/certwright/internal/store"
)

// settingKeyFormat records that rewrapLegacyKeys finished: later starts
// skip the scan. Deleting it makes the next start look again (after
// restoring old rows from a backup, say).
const settingKeyFormat = "keys_purpose_bound"

// rewrapLegacyKeys upgrades software keys wrapped by versions up to
// 5e5a77d, whose additional data was the key ID only, to the format that
// binds each key to its purpose and owner. It runs at start, before any
// key is used, in one transaction (a failure changes nothing), and once
// it has finished later starts skip it (settingKeyFormat).
//
// The purpose comes from where the key sits, and a legacy blob may have
// been copied there from elsewhere before the upgrade (say a CA's key onto
// a managed certificate). So a key is re-wrapped only when its public half
// is the public key of its record; any other is left in the legacy format,
// which nothing but this migration opens, and is logged and audited. A CA
// key the KEK does not open stops the start (wrong KEK file).
func (a *App) rewrapLegacyKeys(ctx context.Context) error {
	var serverTLS string
	if cur, err := a.store.GetSetting(ctx, settingServerTLS); err == nil {
		serverTLS = string(cur)
	} else if !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("app: re-wrap keys: %w", err)
	}
	var refused []string
	res, err := a.store.RewrapKeys(ctx, software.Name, software.LegacyBlobPrefix, settingKeyFormat,
		func(k *store.WrappedKey) ([]byte, error) {
			ref, err := a.keys.MigrateLegacy(ctx, k.Ref, legacyPurpose(k, serverTLS), k.Public)
			switch {
			case err == nil:
				return ref.Blob, nil
			case errors.Is(err, keys.ErrWrongKEK) && k.Kind == store.KeyKindCA:
				return nil, err
			case errors.Is(err, keys.ErrWrongKEK), errors.Is(err, keys.ErrKeyMismatch), errors.Is(err, software.ErrMalformedBlob):
				refused = append(refused, k.Where())
				a.log.Error("wrapped key NOT re-wrapped: it is not the key of the record that holds it (the database was altered); it stays unusable",
					"record", k.Where(), "key_id", k.Ref.ID, "err", err)
				return nil, nil
			default:
				return nil, err
			}
		},
		func(r store.RewrapResult) *audit.Event {
			details := map[string]any{"format": "purpose-bound", "found": r.Found, "rewrapped": r.Rewrapped}
			if len(refused) > 0 {
				details["refused"] = refused
			}
			ev := audit.New(authz.System(), a.clock.Now(), "key.rewrap", "keys", details)
			if len(refused) > 0 {
				ev.Outcome = audit.Failed
			}
			return &ev
		})
	if err != nil {
		return fmt.Errorf("app: re-wrap keys in the purpose-bound format: %w", err)
	}
	if res.Found > 0 {
		a.log.Info("re-wrapped legacy keys in the purpose-bound format",
			"found", res.Found, "rewrapped", res.Rewrapped, "refused", len(refused))
	}
	return nil
}

// legacyPurpose is the purpose a legacy key is bound to, from where it
// sits. The server's own TLS certificates (requested by the server, or the
// one it serves now) get the never-exported server purpose.
func legacyPurpose(k *store.WrappedKey, serverTLS string) keys.Purpose {
	switch k.Kind {
	case store.KeyKindCA:
		return keys.CAPurpose(k.Owner)
	case store.KeyKindOCSP:
		return keys.OCSPPurpose(k.Owner)
	case store.KeyKindAudit:
		return keys.AuditPurpose(k.Owner)
	}
	if k.Requester == authz.System().Name || k.Owner == serverTLS {
		return keys.ServerTLSPurpose(k.Owner)
	}
	return keys.ManagedPurpose(k.Owner)
}
