package tlsprobe_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/scan/tlsprobe"
)

// TestCrossCheckTestssl compares the prober with testssl.sh on one
// openssl server: the protocols offered, the set of cipher suites and the
// forward secrecy finding must agree. testssl takes a minute or two here,
// so the test runs only without -short.
func TestCrossCheckTestssl(t *testing.T) {
	if testing.Short() {
		t.Skip("testssl takes a minute or more: skipped with -short")
	}
	bin, err := exec.LookPath("testssl")
	if err != nil {
		if bin, err = exec.LookPath("testssl.sh"); err != nil {
			t.Skip("testssl not installed (Debian package testssl.sh)")
		}
	}
	pki := tlsprobe.NewTestPKI(t, true)
	addr := tlsprobe.StartOpenSSL(t, pki, "-no_tls1_1", "-no_tls1_3",
		"-cipher", "ECDHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-SHA:AES128-SHA:@SECLEVEL=0")
	rep := enumerate(t, addr, tlsprobe.Options{ServerName: "localhost"})

	jsonFile := filepath.Join(t.TempDir(), "testssl.json")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// -p protocols, -e every cipher; --nodns none: the test has no DNS.
	cmd := exec.CommandContext(ctx, bin, "--quiet", "--warnings", "off", "--color", "0", "--nodns", "none",
		"--jsonfile", jsonFile, "-p", "-e", addr)
	cmd.Env = append(os.Environ(), "NXCONNECT=127.0.0.1:0") // do not resolve "invalid." while probing openssl
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Skipf("testssl did not finish within 5 minutes on this machine: %v", ctx.Err())
	}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("testssl: %v\n%s", err, out)
	}
	raw, err := os.ReadFile(jsonFile)
	if err != nil {
		t.Fatalf("testssl wrote no JSON (%v):\n%s", err, out)
	}
	var findings []struct{ ID, Finding string }
	if err := json.Unmarshal(raw, &findings); err != nil {
		t.Fatalf("testssl JSON: %v", err)
	}

	protoIDs := map[string]tlsprobe.Version{"SSLv3": tlsprobe.VersionSSL30, "TLS1": tlsprobe.VersionTLS10,
		"TLS1_1": tlsprobe.VersionTLS11, "TLS1_2": tlsprobe.VersionTLS12, "TLS1_3": tlsprobe.VersionTLS13}
	var theirSuites []uint16
	theirFS, sawProtocols := false, 0
	for _, f := range findings {
		if v, ok := protoIDs[f.ID]; ok {
			sawProtocols++
			theyOffer := strings.HasPrefix(f.Finding, "offered")
			if ours := rep.Version(v).Offered; ours != theyOffer {
				t.Errorf("%s: testssl says %q, we say offered=%t", v, f.Finding, ours)
			}
		}
		if hexID, ok := strings.CutPrefix(f.ID, "cipher_x"); ok {
			id, err := strconv.ParseUint(hexID, 16, 16)
			if err != nil {
				t.Fatalf("testssl cipher id %q: %v", f.ID, err)
			}
			theirSuites = append(theirSuites, uint16(id))
			// The finding's third column is the key exchange: "ECDH 253", "DH 2048", "RSA".
			if fields := strings.Fields(f.Finding); len(fields) > 2 && (fields[2] == "ECDH" || fields[2] == "DH") {
				theirFS = true
			}
		}
	}
	if sawProtocols != len(protoIDs) || len(theirSuites) == 0 {
		t.Fatalf("testssl JSON lacks protocol or cipher findings:\n%s", raw)
	}
	var ourSuites []uint16
	for _, vr := range rep.Versions {
		for _, s := range vr.Suites {
			if !slices.Contains(ourSuites, s.ID) {
				ourSuites = append(ourSuites, s.ID)
			}
		}
	}
	slices.Sort(ourSuites)
	slices.Sort(theirSuites)
	if !slices.Equal(ourSuites, theirSuites) {
		t.Errorf("suites: ours %04x, testssl's %04x", ourSuites, theirSuites)
	}
	if rep.ForwardSecrecy.Offered != theirFS {
		t.Errorf("forward secrecy offered: ours %t, testssl's %t", rep.ForwardSecrecy.Offered, theirFS)
	}
}
