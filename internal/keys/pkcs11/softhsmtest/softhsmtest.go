// Package softhsmtest makes SoftHSM2 tokens for tests: each test gets a
// token of its own in its temporary directory, and reads it back with
// OpenSC's pkcs11-tool. It skips the test where SoftHSM2 is not installed.
//
// SoftHSM2 reads SOFTHSM2_CONF once, in C_Initialize, and sees only the
// tokens in its token directory at that moment; and PKCS#11 allows one
// initialisation of a module per process (a second C_Initialize answers
// CKR_CRYPTOKI_ALREADY_INITIALIZED, which pkcs11.Open reports as
// ErrModuleInUse). So New writes a softhsm2.conf naming a token directory
// in the test's own t.TempDir(), points SOFTHSM2_CONF at it with t.Setenv
// (Go passes it on to the C environment the module reads, and t.Setenv
// also keeps the test from running in parallel with any other), and
// creates the token there with softhsm2-util; the test opens the module
// only after that, and closes it (C_Finalize) before it ends, so the next
// test initialises it afresh against its own directory. pkcs11-tool and
// softhsm2-util, started as child processes, inherit the same
// SOFTHSM2_CONF.
package softhsmtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The user and security officer PINs of every token New makes.
const (
	PIN   = "1234"
	SOPIN = "5678"
)

// modules are where Debian's softhsm2 package puts the module.
var modules = []string{
	"/usr/lib/softhsm/libsofthsm2.so",
	"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
}

// Token is a SoftHSM2 token in a test's temporary directory.
type Token struct {
	// Dir is the test's directory holding softhsm2.conf and Tokens.
	Dir string
	// Tokens is SoftHSM2's token directory (directories.tokendir).
	Tokens string
	// Label is the token's label; Module the path of the PKCS#11 library.
	Label  string
	Module string
}

// New creates token label in a fresh token directory and points
// SOFTHSM2_CONF at it. It skips the test without SoftHSM2.
func New(t testing.TB, label string) *Token {
	t.Helper()
	module := ""
	for _, m := range modules {
		if _, err := os.Stat(m); err == nil {
			module = m
			break
		}
	}
	if module == "" {
		t.Skipf("SoftHSM2 module not found in %s: install Debian package softhsm2", strings.Join(modules, " or "))
	}
	if _, err := exec.LookPath("softhsm2-util"); err != nil {
		t.Skip("softhsm2-util not found: install Debian package softhsm2")
	}
	dir := t.TempDir()
	tk := &Token{Dir: dir, Tokens: filepath.Join(dir, "tokens"), Label: label, Module: module}
	if err := os.Mkdir(tk.Tokens, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	body := fmt.Sprintf("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n", tk.Tokens)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOFTHSM2_CONF", conf)
	tk.Run(t, "softhsm2-util", "--init-token", "--free", "--label", label, "--pin", PIN, "--so-pin", SOPIN)
	return tk
}

// Run runs a SoftHSM2 or OpenSC tool and returns its output.
func (tk *Token) Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Tool runs OpenSC's pkcs11-tool logged in to the token, skipping the
// test without it.
func (tk *Token) Tool(t testing.TB, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("pkcs11-tool"); err != nil {
		t.Skip("pkcs11-tool not found: install Debian package opensc")
	}
	base := []string{"--module", tk.Module, "--token-label", tk.Label, "--login", "--pin", PIN}
	return tk.Run(t, "pkcs11-tool", append(base, args...)...)
}

// PINFile writes the token's user PIN to a 0600 file and returns its path.
func (tk *Token) PINFile(t testing.TB) string {
	t.Helper()
	return WritePIN(t, PIN+"\n", 0o600)
}

// WritePIN writes pin to a file of mode perm and returns its path.
func WritePIN(t testing.TB, pin string, perm os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pin")
	if err := os.WriteFile(path, []byte(pin), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil {
		t.Fatal(err)
	}
	return path
}

// TokenDir returns the directory SoftHSM2 keeps the token's objects in.
func (tk *Token) TokenDir(t testing.TB) string {
	t.Helper()
	ents, err := os.ReadDir(tk.Tokens)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 {
		t.Fatalf("%d entries in the token directory, want 1", len(ents))
	}
	return filepath.Join(tk.Tokens, ents[0].Name())
}

// Objects lists the token's objects with pkcs11-tool --list-objects, as
// the words of each object's "Access:" line by "kind/label" (kind as
// pkcs11-tool prints it, e.g. "Private Key Object").
func (tk *Token) Objects(t testing.TB) map[string]map[string]bool {
	t.Helper()
	return ParseListObjects(tk.Tool(t, "--list-objects"))
}

// Safe reports whether an object's Access words say it is sensitive, was
// always sensitive and was never extractable.
func Safe(access map[string]bool) bool {
	return access["sensitive"] && access["always sensitive"] && access["never extractable"] && !access["extractable"]
}

// ParseListObjects reads pkcs11-tool --list-objects output into the words
// of each object's "Access:" line, by "kind/label".
func ParseListObjects(out string) map[string]map[string]bool {
	objs := map[string]map[string]bool{}
	var kind, label string
	var access map[string]bool
	flush := func() {
		if kind != "" && label != "" && access != nil {
			objs[kind+"/"+label] = access
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if line == "" || strings.HasPrefix(line, "warning:") {
			continue
		}
		if !strings.HasPrefix(line, " ") {
			flush()
			kind, _, _ = strings.Cut(line, ";")
			label, access = "", nil
			continue
		}
		key, val, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		switch key {
		case "label":
			label = val
		case "Access":
			access = map[string]bool{}
			for _, w := range strings.Split(val, ",") {
				access[strings.TrimSpace(w)] = true
			}
		}
	}
	flush()
	return objs
}
