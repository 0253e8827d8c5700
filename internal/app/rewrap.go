package app

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/issue"
	"github.com/certwright/certwright/internal/keys"
	"github.com/certwright/certwright/internal/keys/software"
	"github.com/certwright/certwright/internal/store"
)

// settingKeyFormat records that rewrapLegacyKeys finished: later starts
// skip the scan. Deleting it makes the next start look again (after
// restoring old rows from a backup, say).
const settingKeyFormat = "keys_purpose_bound"

// settingKeyFormatRefused is settingKeyFormat's value after a start that
// found legacy keys it no longer opens (KeysMarkerFile present): any value
// but "done" makes the next start look again.
const settingKeyFormatRefused = "legacy keys refused"

// KeysMarkerFile, in the data directory beside the KEK, records outside
// the database that this directory's keys are purpose-bound (migration
// finished, or created by init). Once it exists the software provider
// never opens a legacy blob again, whatever the database says.
const KeysMarkerFile = "keys-purpose-bound"

// rewrapLegacyKeys upgrades software keys wrapped by versions up to
// 5e5a77d, whose additional data was the key ID only, to the format that
// binds each key to its purpose and owner. It runs at start, before any
// key is used, in one transaction (a failure changes nothing), and once
// it has finished later starts skip it (settingKeyFormat).
//
// The purpose comes from where the key sits, and a legacy blob may have
// been copied there from elsewhere before the upgrade (say a CA's key onto
// a managed certificate, with the CA's certificate as the row's). So a key
// is re-wrapped only when its public half is the public key of its record
// and, for a certificate, that certificate is an end-entity certificate
// issued by the row's CA under the row's serial whose key is none of the
// instance's own (CA, OCSP responder, audit) keys; any other is left in
// the legacy format, which nothing but this migration opens, and is
// logged and audited. A CA key the KEK does not open stops the start
// (wrong KEK file).
//
// Once done, the marker file KeysMarkerFile is written beside the KEK and
// the provider closed to legacy blobs. At a start that finds the file the
// provider is closed first: a legacy blob put into the database later
// (from a backup, by someone who can write the database, who can also
// delete the marker setting) is found if the setting is missing, refused
// and audited, and never opened. A replica with its own data directory and
// no file yet, whose database another replica already migrated (setting
// present), writes its file without re-wrapping anything.
func (a *App) rewrapLegacyKeys(ctx context.Context) error {
	markerPath := filepath.Join(a.cfg.DataDir, KeysMarkerFile)
	closed, err := software.LegacyMarkerExists(markerPath)
	if err != nil {
		return fmt.Errorf("app: re-wrap keys: %w", err)
	}
	if closed {
		a.soft.CloseLegacy()
	}
	var own []crypto.PublicKey
	if !closed {
		if own, err = a.store.InstanceKeys(ctx); err != nil {
			return fmt.Errorf("app: re-wrap keys: %w", err)
		}
	}
	var serverTLS string
	if cur, err := a.store.GetSetting(ctx, settingServerTLS); err == nil {
		serverTLS = string(cur)
	} else if !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("app: re-wrap keys: %w", err)
	}
	var refused []string
	res, err := a.store.RewrapKeys(ctx, software.Name, software.LegacyBlobPrefix, settingKeyFormat,
		func(k *store.WrappedKey) ([]byte, error) {
			err := checkLegacyManaged(k, own)
			var ref keys.Ref
			if err == nil {
				ref, err = a.soft.MigrateLegacy(ctx, k.Ref, recordPurpose(k, serverTLS), k.Public)
			}
			switch {
			case err == nil:
				return ref.Blob, nil
			case errors.Is(err, software.ErrLegacyClosed):
				refused = append(refused, k.Where())
				a.log.Error("legacy-format wrapped key found after this data directory's keys were migrated (restored from an old backup, or written into the database); it is never opened",
					"record", k.Where(), "key_id", k.Ref.ID, "marker", markerPath)
				return nil, nil
			case errors.Is(err, keys.ErrWrongKEK) && k.Kind == store.KeyKindCA:
				return nil, err
			case errors.Is(err, keys.ErrWrongKEK), errors.Is(err, keys.ErrKeyMismatch), errors.Is(err, software.ErrMalformedBlob),
				errors.Is(err, keys.ErrInstanceKey), errors.Is(err, issue.ErrNotManagedCertificate):
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
			if closed {
				details["reason"] = "legacy keys found after the migration had finished; none opened"
			}
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
	if res.Found > 0 && !closed {
		a.log.Info("re-wrapped legacy keys in the purpose-bound format",
			"found", res.Found, "rewrapped", res.Rewrapped, "refused", len(refused))
	}
	if closed {
		if len(refused) > 0 {
			// Not "done": the next start looks (and reports) again, and
			// after a whole pre-upgrade database was restored and the
			// marker file deleted on purpose, the migration runs.
			if err := a.store.PutSetting(ctx, settingKeyFormat, []byte(settingKeyFormatRefused)); err != nil {
				return fmt.Errorf("app: re-wrap keys: %w", err)
			}
		}
		return nil
	}
	// The database says every key is purpose-bound (this run, or another
	// replica's): from now on this data directory opens no legacy blob.
	if err := software.WriteLegacyMarker(markerPath); err != nil {
		return fmt.Errorf("app: record that the keys are purpose-bound: %w", err)
	}
	a.soft.CloseLegacy()
	a.log.Info("keys are purpose-bound; legacy wrapped keys are no longer opened", "marker", markerPath)
	return nil
}

// checkLegacyManaged returns an error for a legacy key on a certificate
// row (managed or the server's TLS) unless the row holds an end-entity
// certificate issued by its CA under its serial (issue.
// ErrNotManagedCertificate) whose public key is none of own, the instance's
// own keys (keys.ErrInstanceKey). MigrateLegacy then checks that the key is
// that certificate's. Other kinds of record pass.
func checkLegacyManaged(k *store.WrappedKey, own []crypto.PublicKey) error {
	if k.Kind != store.KeyKindManaged {
		return nil
	}
	if err := issue.CheckManagedCertificate(k.CertDER, k.IssuerDER, k.Owner); err != nil {
		return err
	}
	if k.Public == nil {
		return fmt.Errorf("%w: certificate %s has no public key", keys.ErrKeyMismatch, k.Owner)
	}
	return keys.CheckNotInstanceKey(k.Public, own)
}

// recordPurpose is the purpose the key of record k is bound to, from where
// it sits (never from its Ref): a legacy key is re-wrapped for it, and an
// escrowed key is checked against it. The server's own TLS certificates
// (requested by the server, or the one it serves now) get the
// never-exported server purpose.
func recordPurpose(k *store.WrappedKey, serverTLS string) keys.Purpose {
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
