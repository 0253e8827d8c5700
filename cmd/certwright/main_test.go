package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/certwright/certwright/internal/cli"
	"github.com/certwright/certwright/internal/nodump"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"certwright": func() {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			code := cli.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
			stop()
			os.Exit(code)
		},
		// certwright-dumpable runs the command line as certwright does,
		// then says whether the process may still dump core.
		"certwright-dumpable": func() {
			code := cli.Main(context.Background(), os.Args[1:], os.Stdin, io.Discard, io.Discard, os.Getenv)
			d, err := nodump.Dumpable()
			fmt.Printf("exit=%d dumpable=%v err=%v\n", code, d, err)
			os.Exit(0)
		},
	})
}

// TestScripts runs the command line as a user types it: testdata/script/*.txtar.
// Scripts that need openssl skip without it; scripts named *_postgres run
// only when CERTWRIGHT_TEST_POSTGRES is set; scripts that need a SoftHSM2
// token skip without it ([!softhsm]).
func TestScripts(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not found: install it (apt-get install openssl) to run the command-line scripts")
	}
	cmds := map[string]func(ts *testscript.TestScript, neg bool, args []string){
		"waitserver": waitServer,
		"apicall":    apiCall,
		"kekswap":    kekSwap,
		"nokeys":     noPlainKeys,
		"capture":    capture,
	}
	for name, f := range revocationCmds {
		cmds[name] = f
	}
	for name, f := range lifecycleCmds {
		cmds[name] = f
	}
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Setup:               setupScript(t),
		Cmds:                cmds,
		Condition: func(cond string) (bool, error) {
			if cond == "postgres" {
				return os.Getenv("CERTWRIGHT_TEST_POSTGRES") != "", nil
			}
			if cond == "softhsm" {
				return softHSM(), nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
	})
}

// softHSMModule is where Debian's softhsm2 package puts the module.
const softHSMModule = "/usr/lib/softhsm/libsofthsm2.so"

// softHSM reports whether scripts can use a SoftHSM2 token: this test
// binary is built with cgo (the PKCS#11 module is loaded with dlopen), and
// the module, softhsm2-util and pkcs11-tool are installed.
func softHSM() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok || !slices.Contains(bi.Settings, debug.BuildSetting{Key: "CGO_ENABLED", Value: "1"}) {
		return false
	}
	if _, err := os.Stat(softHSMModule); err != nil {
		return false
	}
	for _, tool := range []string{"softhsm2-util", "pkcs11-tool"} {
		if _, err := exec.LookPath(tool); err != nil {
			return false
		}
	}
	return true
}

// setupScript gives each script a fresh PostgreSQL schema in $PGURL when
// CERTWRIGHT_TEST_POSTGRES is set, and pins free ports.
func setupScript(t *testing.T) func(*testscript.Env) error {
	return func(env *testscript.Env) error {
		env.Setenv("CERTWRIGHT_DATA_DIR", "")
		base := os.Getenv("CERTWRIGHT_TEST_POSTGRES")
		if base == "" {
			return nil
		}
		b := make([]byte, 6)
		_, _ = rand.Read(b)
		schema := "cw_script_" + hex.EncodeToString(b)
		db, err := sql.Open("pgx", base)
		if err != nil {
			return err
		}
		defer db.Close()
		if _, err := db.Exec("CREATE SCHEMA " + schema); err != nil {
			return fmt.Errorf("create schema: %w", err)
		}
		env.Defer(func() {
			db, err := sql.Open("pgx", base)
			if err == nil {
				_, _ = db.Exec("DROP SCHEMA " + schema + " CASCADE")
				db.Close()
			}
		})
		u, err := url.Parse(base)
		if err != nil {
			return err
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		env.Setenv("PGURL", u.String())
		return nil
	}
}

// waitserver [DATADIR]: wait until the server in DATADIR (default
// certwright-data) answers /healthz over HTTPS, trusting only its root.
func waitServer(ts *testscript.TestScript, neg bool, args []string) {
	dir := "certwright-data"
	if len(args) > 0 {
		dir = args[0]
	}
	dir = ts.MkAbs(dir)
	deadline := time.Now().Add(60 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		c, base, err := client(dir)
		if err == nil {
			var resp *http.Response
			resp, err = c.Get(base + "/healthz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					return
				}
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	ts.Fatalf("server in %s did not come up: %v", dir, last)
}

func client(dir string) (*http.Client, string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "server.json"))
	if err != nil {
		return nil, "", err
	}
	var info struct{ URL string }
	if err := json.Unmarshal(b, &info); err != nil {
		return nil, "", err
	}
	rootPEM, err := os.ReadFile(filepath.Join(dir, "root.pem"))
	if err != nil {
		return nil, "", err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(rootPEM)
	return &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}},
	}, info.URL, nil
}

// apicall METHOD PATH [TOKEN|-] [BODYFILE|@SIZE]: call the API of the server in
// certwright-data; prints "status N" and the body to stdout. TOKEN "-" sends
// none; "admin" sends the admin token; anything else is sent as is. @SIZE
// sends SIZE bytes of JSON-ish padding (e.g. @10485760).
func apiCall(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: apicall METHOD PATH [TOKEN] [BODYFILE|@SIZE]")
	}
	dir := ts.MkAbs("certwright-data")
	c, base, err := client(dir)
	if err != nil {
		ts.Fatalf("%v", err)
	}
	var body *strings.Reader
	if len(args) > 3 {
		if n, ok := strings.CutPrefix(args[3], "@"); ok {
			var size int
			fmt.Sscan(n, &size)
			body = strings.NewReader(`{"csr_pem":"` + strings.Repeat("A", size) + `"}`)
		} else {
			body = strings.NewReader(ts.ReadFile(args[3]))
		}
	} else {
		body = strings.NewReader("")
	}
	req, err := http.NewRequest(args[0], base+args[1], body)
	if err != nil {
		ts.Fatalf("%v", err)
	}
	tok := "admin"
	if len(args) > 2 {
		tok = args[2]
	}
	switch tok {
	case "-":
	case "admin":
		b, err := os.ReadFile(filepath.Join(dir, "admin.token"))
		if err != nil {
			ts.Fatalf("%v", err)
		}
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(b)))
	default:
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		ts.Fatalf("%v", err)
	}
	defer resp.Body.Close()
	var out strings.Builder
	fmt.Fprintf(&out, "status %d\n", resp.StatusCode)
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	out.Write(b)
	ts.Stdout().Write([]byte(out.String()))
}

// kekswap DIR: replace the data directory's KEK with a different random one.
func kekSwap(ts *testscript.TestScript, neg bool, args []string) {
	path := filepath.Join(ts.MkAbs(args[0]), "kek")
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		ts.Fatalf("%v", err)
	}
}

// nokeys DIR: fail if any file under DIR holds an unencrypted private key,
// as PEM or as DER anywhere in the file (SQLite pages included).
func noPlainKeys(ts *testscript.TestScript, neg bool, args []string) {
	dir := ts.MkAbs(args[0])
	n := 0
	err := filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		n++
		if f := findPrivateKey(b); f != "" {
			ts.Fatalf("%s holds an unencrypted private key (%s)", path, f)
		}
		return nil
	})
	if err != nil {
		ts.Fatalf("%v", err)
	}
	ts.Logf("checked %d files for private keys", n)
}

// capture REGEXP VAR: set VAR to the first submatch of REGEXP in the last
// command's stdout.
func capture(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: capture REGEXP VAR")
	}
	re, err := regexp.Compile(args[0])
	if err != nil {
		ts.Fatalf("%v", err)
	}
	m := re.FindStringSubmatch(ts.ReadFile("stdout"))
	if m == nil || len(m) < 2 {
		ts.Fatalf("capture: %q not found in stdout", args[0])
	}
	ts.Setenv(args[1], m[1])
}
