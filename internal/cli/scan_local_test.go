package cli

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestScanLocal: "certwright scan TARGET" scans with no server: an HTTPS
// server on loopback whose certificate --roots trusts grades A or better,
// the same server untrusted grades T with the reason, --json prints the
// observation, and the server's subcommands and bad targets are told
// apart from targets.
func TestScanLocal(t *testing.T) {
	t.Parallel()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "https://")
	dir := t.TempDir()
	roots := writeCertPEM(t, dir, "roots.pem", srv.Certificate())
	env := map[string]string{"CERTWRIGHT_DATA_DIR": dir}

	code, out, errOut := run(t, env, "scan", addr, "--roots", roots, "--rate", "1000", "--no-revocation")
	if code != 0 || !strings.Contains(out, "speaks:      https") || !strings.Contains(out, "grade:       A") {
		t.Fatalf("scan with the server's root trusted: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = run(t, env, "scan", addr, "--rate", "1000", "--no-revocation")
	if code != 0 || !strings.Contains(out, "grade:       T") || !strings.Contains(strings.ToLower(out), "trust") {
		t.Errorf("scan with the server's certificate untrusted: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = run(t, env, "--json", "scan", addr, "--rate", "1000", "--no-revocation", "--roots", roots)
	var got struct {
		Endpoints []struct {
			Address    string `json:"address"`
			Encryption string `json:"encryption"`
			Grade      *struct {
				Letter string `json:"letter"`
			} `json:"grade"`
		} `json:"endpoints"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil || len(got.Endpoints) != 1 || got.Endpoints[0].Encryption != "implicit-tls" || got.Endpoints[0].Grade == nil {
		t.Errorf("scan --json: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, _, errOut := run(t, env, "scan", "not a target:99999"); code == 0 {
		t.Errorf("a bad target: exit %d, %s", code, errOut)
	} else if !strings.Contains(errOut, "target") {
		t.Errorf("a bad target's error does not name the target: %s", errOut)
	}
	if code, out, _ := run(t, env, "scan", "--help"); code != 0 || !strings.Contains(out, "TARGET") || !strings.Contains(out, "endpoints") {
		t.Errorf("scan --help: exit %d\n%s", code, out)
	}
}

// writeCertPEM writes cert as PEM to dir/name and returns its path.
func writeCertPEM(t *testing.T, dir, name string, cert *x509.Certificate) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
