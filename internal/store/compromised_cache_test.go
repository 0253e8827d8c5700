package store_test

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/store"
)

// TestCompromisedKeyCache: "not listed" comes from this process's copy of
// the list, yet a key reported through this store is listed on the very
// next question, and one reported through another handle on the same
// database (another replica) once store.CompromisedCacheMaxAge has passed.
func TestCompromisedKeyCache(t *testing.T) {
	t.Parallel()
	forDialects(t, func(t *testing.T, url string, raw *rawDB) {
		ctx := context.Background()
		here, err := store.Open(ctx, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer here.Close()
		other, err := store.Open(ctx, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		base := time.Now()
		var elapsed atomic.Int64
		store.SetClock(here, func() time.Time { return base.Add(time.Duration(elapsed.Load())) })

		now := time.Now().UTC().Truncate(time.Second)
		spki := func(c byte) string { return strings.Repeat(string(c), 64) }
		for serial, key := range map[string]string{"c-here": spki('a'), "c-other": spki('b')} {
			if err := here.InsertCertificate(ctx, &inventory.Certificate{
				Serial: serial, CAID: "ca1", Status: inventory.StatusValid, SPKISHA256: key,
				NotAfter: now.Add(time.Hour), DER: []byte{1}, CreatedAt: now,
			}, tev()); err != nil {
				t.Fatal(err)
			}
		}
		listed := func(key string) bool {
			t.Helper()
			k, err := here.CompromisedKey(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			return k != nil
		}
		if listed(spki('a')) || listed(spki('b')) {
			t.Fatal("a key is listed before any report")
		}
		revoke := func(db *store.DB, serial string) {
			t.Helper()
			r := &inventory.Revocation{Serial: serial, RevokedAt: now, Reason: pki.ReasonKeyCompromise, RevokedBy: "alice"}
			if _, _, err := db.RevokeCertificate(ctx, r, tev()); err != nil {
				t.Fatal(err)
			}
		}
		// Through this store: at once, the clock standing still.
		revoke(here, "c-here")
		if !listed(spki('a')) {
			t.Fatal("a key reported through this store is not listed on the next question")
		}
		// Through another replica: the copy may answer "not listed" until
		// it is CompromisedCacheMaxAge old, never after.
		revoke(other, "c-other")
		// Within the bound "not listed" is the copy's answer, not the
		// database's (which has the report already): the copy is in use.
		if listed(spki('b')) {
			t.Fatal("a key reported through another replica is listed before the copy expired: the answer did not come from the in-memory copy")
		}
		elapsed.Store(int64(store.CompromisedCacheMaxAge) - 1)
		if listed(spki('b')) {
			t.Fatalf("the copy was read again before it was %v old", store.CompromisedCacheMaxAge)
		}
		elapsed.Store(int64(store.CompromisedCacheMaxAge))
		if !listed(spki('b')) {
			t.Fatalf("a key reported through another replica is not listed %v later", store.CompromisedCacheMaxAge)
		}
		if listed(spki('c')) {
			t.Fatal("a key never reported is listed")
		}
	})
}

// TestCompromisedWritesUseCompromisedTx: every function that lists keys as
// compromised runs in compromisedTx, which moves the generation the
// in-memory copy of the list is read under.
func TestCompromisedWritesUseCompromisedTx(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Body == nil || strings.HasPrefix(fn.Name.Name, "reportCompromised") {
				continue
			}
			reports, inTx := false, false
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.SelectorExpr:
					if strings.HasPrefix(n.Sel.Name, "reportCompromised") {
						reports = true
					}
					if n.Sel.Name == "compromisedTx" {
						inTx = true
					}
				case *ast.BasicLit:
					if strings.Contains(strings.ToLower(n.Value), "insert into compromised_keys") {
						reports = true
					}
				}
				return true
			})
			if reports {
				checked++
				if !inTx {
					t.Errorf("%s: %s lists keys as compromised outside compromisedTx: the in-memory list would not see it at once", fset.Position(fn.Pos()), fn.Name.Name)
				}
			}
		}
	}
	if checked < 3 {
		t.Fatalf("found %d functions listing compromised keys: the scan no longer sees them", checked)
	}
}
