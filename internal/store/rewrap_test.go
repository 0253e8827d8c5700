package store_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/ca"
	"github.com/certwright/certwright/internal/keys"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/store"
	"github.com/certwright/certwright/internal/store/storetest"
)

const tMarker = "test_rewrap_done"

func rewrapStores(t *testing.T) map[string]func(t *testing.T) *store.DB {
	return map[string]func(t *testing.T) *store.DB{
		"sqlite": func(t *testing.T) *store.DB { return storetest.OpenSQLite(t) },
		"postgres": func(t *testing.T) *store.DB {
			db, err := store.Open(context.Background(), storetest.PostgresSchema(t, storetest.PostgresURL(t)), nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return db
		},
	}
}

// rewrapCAs stores CAs whose key blobs start with the given bytes.
func rewrapCAs(t *testing.T, db *store.DB, provider string, blobs map[string]string) {
	t.Helper()
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for id, blob := range blobs {
		c := &ca.CA{ID: id, Name: "name-" + id, Kind: ca.KindRoot, Status: ca.StatusActive,
			Key:     keys.Ref{Provider: provider, ID: "k-" + id, Algorithm: pki.ECDSAP256, Blob: []byte(blob)},
			CertDER: []byte("not a certificate"), CreatedAt: now, UpdatedAt: now}
		if err := db.CreateCA(context.Background(), c, audit.New(authz.System(), now, "ca.create", id, nil)); err != nil {
			t.Fatal(err)
		}
	}
}

func rewrapBlob(t *testing.T, db *store.DB, id string) []byte {
	t.Helper()
	c, err := db.GetCA(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return c.Key.Blob
}

// TestRewrapKeys: RewrapKeys replaces exactly the blobs of the provider
// that start with the prefix, once even when several processes run it
// at the same time, records its marker, and afterwards reads nothing.
func TestRewrapKeys(t *testing.T) {
	t.Parallel()
	for name, open := range rewrapStores(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := open(t)
			rewrapCAs(t, db, "software", map[string]string{"ca_a": "\x01legacy a", "ca_b": "\x01legacy b", "ca_c": "\x02current c"})
			rewrapCAs(t, db, "pkcs11", map[string]string{"ca_h": "\x01hsm label"})

			var (
				mu        sync.Mutex
				rewrapped int
				wg        sync.WaitGroup
			)
			for i := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					res, err := db.RewrapKeys(ctx, "software", []byte{1}, tMarker,
						func(k *store.WrappedKey) ([]byte, error) {
							if k.Kind != store.KeyKindCA || k.Ref.ID != "k-"+k.Owner || k.Ref.Provider != "software" {
								return nil, errors.New("unexpected key " + k.Where())
							}
							return append([]byte{2, byte(i)}, k.Owner...), nil
						},
						func(r store.RewrapResult) *audit.Event {
							ev := audit.New(authz.System(), time.Now(), "key.rewrap", "keys", map[string]int{"found": r.Found})
							return &ev
						})
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					rewrapped += res.Rewrapped
					mu.Unlock()
				}()
			}
			wg.Wait()
			if rewrapped != 2 {
				t.Errorf("%d rows re-wrapped by 4 concurrent runs, want 2", rewrapped)
			}
			for _, id := range []string{"ca_a", "ca_b"} {
				if b := rewrapBlob(t, db, id); b[0] != 2 || !bytes.HasSuffix(b, []byte(id)) {
					t.Errorf("blob of %s = %q, want re-wrapped", id, b)
				}
			}
			if b := rewrapBlob(t, db, "ca_c"); string(b) != "\x02current c" {
				t.Errorf("current-format blob changed: %q", b)
			}
			if b := rewrapBlob(t, db, "ca_h"); string(b) != "\x01hsm label" {
				t.Errorf("other provider's blob changed: %q", b)
			}
			res, err := db.RewrapKeys(ctx, "software", []byte{1}, tMarker,
				func(k *store.WrappedKey) ([]byte, error) { return nil, errors.New("read after the marker") }, nil)
			if err != nil || !res.Done {
				t.Errorf("run after the marker: %+v, %v; want Done and nothing read", res, err)
			}
		})
	}
}

// TestRewrapKeysAtomic: an error for one key leaves every row (and the
// marker, and the audit log) as it was.
func TestRewrapKeysAtomic(t *testing.T) {
	t.Parallel()
	for name, open := range rewrapStores(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := open(t)
			rewrapCAs(t, db, "software", map[string]string{"ca_a": "\x01legacy a", "ca_b": "\x01legacy b"})
			seq, _, err := db.AuditHead(ctx)
			if err != nil {
				t.Fatal(err)
			}
			boom := errors.New("boom")
			_, err = db.RewrapKeys(ctx, "software", []byte{1}, tMarker,
				func(k *store.WrappedKey) ([]byte, error) {
					if k.Owner == "ca_b" {
						return nil, boom
					}
					return []byte("\x02new"), nil
				},
				func(store.RewrapResult) *audit.Event {
					ev := audit.New(authz.System(), time.Now(), "key.rewrap", "keys", nil)
					return &ev
				})
			if !errors.Is(err, boom) {
				t.Fatalf("RewrapKeys = %v, want boom", err)
			}
			if b := rewrapBlob(t, db, "ca_a"); string(b) != "\x01legacy a" {
				t.Errorf("blob of ca_a = %q after the failed run, want unchanged", b)
			}
			if _, err := db.GetSetting(ctx, tMarker); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("marker after the failed run: %v, want not found", err)
			}
			if after, _, err := db.AuditHead(ctx); err != nil || after != seq {
				t.Errorf("audit head %d after the failed run, want %d (%v)", after, seq, err)
			}
		})
	}
}
