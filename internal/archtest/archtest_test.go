package archtest

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/certwright/certwright/"

// core packages: the domain, which must stay free of transport and storage.
var core = []string{
	"internal/pki", "internal/clock", "internal/profile", "internal/lint", "internal/ca",
	"internal/issue", "internal/inventory", "internal/authz", "internal/keys", "internal/verify",
	"internal/revoke", "internal/revoke/crl", "internal/revoke/ocsp", "internal/audit", "internal/access", "internal/acme",
	"internal/lifecycle", "internal/compliance", "internal/inspect", "internal/ceremony",
	"internal/discovery", "internal/est", "internal/scep",
}

// nestedAdapters live under a core package but touch the outside world
// (the design's map puts challenge validation beside the ACME core).
var nestedAdapters = []string{"internal/acme/validate"}

// forbiddenInCore are imports the domain core must not use.
var forbiddenInCore = []string{
	"net/http", "database/sql", "html/template",
	"github.com/jackc/pgx", "modernc.org/sqlite",
	module + "internal/store", module + "internal/web", module + "internal/app", module + "internal/cli",
	// revcheck fetches CRLs and OCSP answers over HTTP for relying parties.
	module + "internal/revcheck",
	// scan dials the endpoints it observes.
	module + "internal/scan",
}

// forbiddenInWeb: the internet-facing edge never holds a signing key.
var forbiddenInWeb = []string{module + "internal/keys"}

func root(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(filepath.Dir(wd))
}

type pkgInfo struct {
	dir     string
	imports map[string]string // import path -> file
	hasDoc  bool
	files   int
}

func scan(t *testing.T, base string) map[string]*pkgInfo {
	t.Helper()
	pkgs := map[string]*pkgInfo{}
	err := filepath.WalkDir(base, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); name == "testdata" || strings.HasPrefix(name, ".") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly|parser.ParseComments)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(base, filepath.Dir(path))
		p := pkgs[rel]
		if p == nil {
			p = &pkgInfo{dir: rel, imports: map[string]string{}}
			pkgs[rel] = p
		}
		p.files++
		if f.Doc != nil && strings.HasPrefix(strings.TrimSpace(f.Doc.Text()), "Package "+f.Name.Name+" ") {
			p.hasDoc = true
		}
		if f.Name.Name == "main" && f.Doc != nil {
			p.hasDoc = true
		}
		for _, imp := range f.Imports {
			p.imports[strings.Trim(imp.Path.Value, `"`)] = filepath.Base(path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return pkgs
}

func under(dir string, prefixes []string) bool {
	for _, p := range prefixes {
		if dir == p || strings.HasPrefix(dir, p+"/") {
			return true
		}
	}
	return false
}

func TestCoreImportsNoTransportOrStorage(t *testing.T) {
	pkgs := scan(t, root(t))
	checked := 0
	for dir, p := range pkgs {
		if !under(dir, core) || under(dir, nestedAdapters) {
			continue
		}
		checked++
		for imp, file := range p.imports {
			for _, bad := range forbiddenInCore {
				if imp == bad || strings.HasPrefix(imp, bad+"/") {
					t.Errorf("%s/%s imports %s: the domain core must not depend on transport, storage or adapters", dir, file, imp)
				}
			}
		}
	}
	if checked < len(core) {
		t.Fatalf("checked %d core packages, expected at least %d: is the layout still as listed?", checked, len(core))
	}
}

func TestWebHoldsNoKeys(t *testing.T) {
	for dir, p := range scan(t, root(t)) {
		if !under(dir, []string{"internal/web"}) {
			continue
		}
		for imp, file := range p.imports {
			for _, bad := range forbiddenInWeb {
				if imp == bad || strings.HasPrefix(imp, bad+"/") {
					t.Errorf("%s/%s imports %s: the web edge must never hold a signing key", dir, file, imp)
				}
			}
		}
	}
}

func TestEveryPackageHasDocComment(t *testing.T) {
	for dir, p := range scan(t, root(t)) {
		if !p.hasDoc {
			t.Errorf("package %s has no doc comment of the form \"Package NAME ...\" saying what it owns", dir)
		}
	}
}

// TestRulesCatchViolations proves the checker itself works: a fake core
// package importing net/http must be flagged.
func TestRulesCatchViolations(t *testing.T) {
	dir := t.TempDir()
	pkg := filepath.Join(dir, "internal", "pki")
	if err := os.MkdirAll(pkg, 0o755); err != nil {
		t.Fatal(err)
	}
	src := "package pki\n\nimport _ \"net/http\"\n"
	if err := os.WriteFile(filepath.Join(pkg, "bad.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	p := scan(t, dir)["internal/pki"]
	if p == nil || p.hasDoc {
		t.Fatalf("scan did not see the undocumented package: %+v", p)
	}
	if _, ok := p.imports["net/http"]; !ok {
		t.Fatalf("scan did not see the net/http import")
	}
}
