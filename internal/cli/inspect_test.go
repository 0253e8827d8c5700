package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestInspectCommand(t *testing.T) {
	t.Parallel()
	tc := newTestChain(t)
	code, stdout, errOut := run(t, nil, "inspect", tc.validLeaf)
	if code != 0 || !strings.Contains(stdout, "Chain of 2 certificates") || !strings.Contains(stdout, "Signed by next:      yes") ||
		!strings.Contains(stdout, "CN=app.example.internal") || !strings.Contains(stdout, "days left") {
		t.Errorf("chain: exit %d, stderr %q\n%s", code, errOut, stdout)
	}
	code, stdout, _ = runAt(t, tc.root.cert.NotBefore.AddDate(0, 0, 1), nil, "inspect", tc.rootFile, "--json")
	var got struct {
		Kind        string
		Certificate struct {
			SelfSigned bool `json:"self_signed"`
			Validity   string
		}
	}
	if code != 0 || json.Unmarshal([]byte(stdout), &got) != nil || got.Kind != "certificate" || !got.Certificate.SelfSigned || got.Certificate.Validity != "valid" {
		t.Errorf("--json: exit %d\n%s", code, stdout)
	}

	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	writeFile(t, garbage, "-----BEGIN CERTIFICATE-----\nnot base64 at all\n", 0o644)
	unreadable := filepath.Join(dir, "secret.pem")
	writeFile(t, unreadable, "x", 0o000)
	for _, tc := range []struct {
		args  []string
		stdin string
		want  string
	}{
		{[]string{"inspect", garbage}, "", garbage + ": not a certificate, chain, CSR or CRL: the PEM is malformed or truncated"},
		{[]string{"inspect", filepath.Join(dir, "missing.pem")}, "", "no such file"},
		{[]string{"inspect", "-"}, "garbage", "neither PEM nor DER"},
		{[]string{"inspect", "-"}, "", "the input is empty"},
		{[]string{"inspect", tc.rootFile, "--max-entries", "0"}, "", "--max-entries must be at least 1"},
	} {
		code, stdout, errOut := runStdin(t, tc.stdin, tc.args...)
		if code == 0 || stdout != "" || !strings.Contains(errOut, tc.want) || !strings.Contains(errOut, "hint:") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q, want %q", tc.args, code, stdout, errOut, tc.want)
		}
	}
	if os.Getuid() != 0 {
		if code, _, errOut := run(t, nil, "inspect", unreadable); code != 1 || !strings.Contains(errOut, "permission denied") {
			t.Errorf("unreadable: exit %d, stderr %q", code, errOut)
		}
	}
	// Standard input works like a file.
	if code, stdout, _ := runStdin(t, string(mustRead(t, tc.rootFile)), "inspect", "-"); code != 0 || !strings.Contains(stdout, "Self-signed") {
		t.Errorf("stdin: exit %d\n%s", code, stdout)
	}
}

// runStdin is run with stdin holding in.
func runStdin(t *testing.T, in string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(context.Background(), args, strings.NewReader(in), &out, &errb, func(string) string { return "" })
	return code, out.String(), errb.String()
}
