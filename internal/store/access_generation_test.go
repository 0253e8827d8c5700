package store_test

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/store"
	"github.com/certwright/certwright/internal/store/storetest"
)

// TestAccessWritesMoveGeneration: every store method that changes what
// authentication reads moves AccessGeneration, so the token cache of this
// process drops what it holds at once; the last-used time does not.
func TestAccessWritesMoveGeneration(t *testing.T) {
	t.Parallel()
	onBackends(t, accessWritesMoveGeneration)
}

// onBackends runs f in parallel on a new SQLite store and a new
// PostgreSQL one (skipped when CERTWRIGHT_TEST_POSTGRES is unset).
func onBackends(t *testing.T, f func(*testing.T, *store.DB)) {
	for _, b := range []struct {
		name string
		open func(testing.TB) *store.DB
	}{{"sqlite", storetest.OpenSQLite}, {"postgres", storetest.OpenPostgres}} {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			f(t, b.open(t))
		})
	}
}

func accessWritesMoveGeneration(t *testing.T, db *store.DB) {
	ctx := context.Background()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ev := func(action string) audit.Event {
		return audit.Event{Time: at, Principal: "test", Action: action, Outcome: audit.Success}
	}
	admin, _ := authz.BuiltinRole(authz.RoleAdmin)
	_, tok, err := authz.NewToken("p_gen", "gen", at, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name string
		do   func() error
		move bool
	}{
		{"CreatePrincipal", func() error {
			return db.CreatePrincipal(ctx, &authz.PrincipalRecord{ID: "p_gen", Name: "gen", Kind: authz.KindMachine, CreatedAt: at}, ev("principal.create"))
		}, true},
		{"CreateToken", func() error { return db.CreateToken(ctx, tok, ev("token.create")) }, true},
		{"TouchToken", func() error { return db.TouchToken(ctx, tok.ID, at) }, false},
		{"CreateRole", func() error {
			return db.CreateRole(ctx, &authz.Role{Name: "gen", Permissions: []authz.Permission{authz.PermCertRead}, CreatedAt: at}, ev("role.create"))
		}, true},
		{"CreateBinding", func() error {
			return db.CreateBinding(ctx, &authz.Binding{ID: "b_gen", PrincipalID: "p_gen", Role: admin, CreatedAt: at}, ev("binding.create"))
		}, true},
		{"DeleteBinding", func() error { _, err := db.DeleteBinding(ctx, "b_gen", ev("binding.delete")); return err }, true},
		{"DeleteRole", func() error { return db.DeleteRole(ctx, "gen", ev("role.delete")) }, true},
		{"AddIdentity", func() error {
			return db.AddIdentity(ctx, &authz.Identity{Kind: "dns", Value: "gen.example", PrincipalID: "p_gen", CreatedAt: at}, ev("identity.add"))
		}, true},
		{"RemoveIdentity", func() error { return db.RemoveIdentity(ctx, "dns", "gen.example", ev("identity.remove")) }, true},
		{"RevokeToken", func() error { _, err := db.RevokeToken(ctx, tok.ID, at, ev("token.revoke")); return err }, true},
		{"DisablePrincipal", func() error { return db.DisablePrincipal(ctx, "p_gen", at, ev("principal.disable")) }, true},
		// A write that fails moves it too: what it did is not known for sure.
		{"CreateBinding refused", func() error {
			_ = db.CreateBinding(ctx, &authz.Binding{ID: "b_x", PrincipalID: "nobody", Role: admin, CreatedAt: at}, ev("binding.create"))
			return nil
		}, true},
	}
	for _, s := range steps {
		before := db.AccessGeneration()
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if moved := db.AccessGeneration() != before; moved != s.move {
			t.Errorf("%s: generation moved = %v, want %v", s.name, moved, s.move)
		}
	}
}

// accessWrite matches writes to the tables authentication reads, and to
// scep_provisioners, which the SCEP service caches under the same
// generation.
var accessWrite = regexp.MustCompile(`(?is)\b(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+(principals|api_tokens|principal_identities|roles|role_bindings|scep_provisioners)\b`)

// notAccessChanges write those tables without changing who is who.
var notAccessChanges = map[string]bool{"sqlTouchToken": true}

// TestAccessWritesUseAccessTx guards the invalidation of the token cache
// against future write paths: any function of this package whose SQL
// writes a table authentication reads must run it through accessTx.
func TestAccessWritesUseAccessTx(t *testing.T) {
	t.Parallel()
	writesUseTx(t, accessWrite, notAccessChanges, "accessTx", 10, "the token cache")
}

// writesUseTx fails for a function of this package (bar wrapper itself)
// that runs a statement matching write, held in a constant not in exempt
// or written as a literal, without calling wrapper; it fails too when it
// finds fewer than min such statements or functions, the sign that the
// scan no longer sees them. cache names what would miss the change.
func writesUseTx(t *testing.T, write *regexp.Regexp, exempt map[string]bool, wrapper string, min int, cache string) {
	t.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var parsed []*ast.File
	writes := map[string]bool{} // constants holding such a statement
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		parsed = append(parsed, f)
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, spec := range g.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, v := range vs.Values {
					if write.MatchString(literals(v)) && !exempt[vs.Names[i].Name] {
						writes[vs.Names[i].Name] = true
					}
				}
			}
		}
	}
	if len(writes) < min {
		t.Fatalf("found %d write statements (%v), want at least %d: the scan no longer sees them", len(writes), writes, min)
	}
	checked := 0
	for _, f := range parsed {
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Body == nil || fn.Name.Name == wrapper {
				continue
			}
			var uses []string
			usesWrapper := false
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.Ident:
					if writes[n.Name] {
						uses = append(uses, n.Name)
					}
				case *ast.BasicLit:
					if write.MatchString(literals(n)) {
						uses = append(uses, "a literal")
					}
				case *ast.SelectorExpr:
					if n.Sel.Name == wrapper {
						usesWrapper = true
					}
				}
				return true
			})
			if len(uses) == 0 {
				continue
			}
			checked++
			if !usesWrapper {
				t.Errorf("%s (%s) writes %v outside %s: %s would not see the change",
					fn.Name.Name, fset.Position(fn.Pos()), uses, wrapper, cache)
			}
		}
	}
	if checked < min {
		t.Errorf("checked %d functions, want at least %d", checked, min)
	}
}

// literals joins the string literals of a constant expression.
func literals(e ast.Node) string {
	var b strings.Builder
	ast.Inspect(e, func(n ast.Node) bool {
		if l, ok := n.(*ast.BasicLit); ok && l.Kind == token.STRING {
			if s, err := strconv.Unquote(l.Value); err == nil {
				b.WriteString(s)
				b.WriteByte(' ')
			}
		}
		return true
	})
	return b.String()
}
