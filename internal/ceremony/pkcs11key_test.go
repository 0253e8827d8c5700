//go:build cgo

package ceremony_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/certwright/certwright/internal/ceremony"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/keys/pkcs11"
	"github.com/certwright/certwright/internal/keys/pkcs11/softhsmtest"
	"github.com/certwright/certwright/internal/pki"
)

const rootLabel = "root:Example Offline Root"

// tokenKey is a key source generating (or, with adopt, adopting) the root
// key labelled label in tk.
func tokenKey(t *testing.T, tk *softhsmtest.Token, label string, adopt bool) ceremony.KeySource {
	t.Helper()
	ks, err := ceremony.NewPKCS11Key(ceremony.PKCS11Options{Module: tk.Module, TokenLabel: tk.Label, PINFile: tk.PINFile(t), KeyLabel: label, Adopt: adopt})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ks.Close() })
	return ks
}

// reopen is the key source a later step opens from the state, with pin.
func reopen(t *testing.T, d *ceremony.Dir, pin string) ceremony.KeySource {
	t.Helper()
	ks, err := d.KeySource(ceremony.Unlock{PKCS11: ceremony.PKCS11Unlock{PINFile: softhsmtest.WritePIN(t, pin, 0o600)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ks.Close() })
	return ks
}

// privateKeyUsage returns the "Usage:" line pkcs11-tool --list-objects
// prints for the private key labelled label.
func privateKeyUsage(out, label string) string {
	var inKey bool
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, " ") {
			inKey = strings.HasPrefix(line, "Private Key Object")
			continue
		}
		k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
		if inKey && k == "label" && strings.TrimSpace(v) != label {
			inKey = false
		}
		if inKey && k == "Usage" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func openssl(t *testing.T, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not found")
	}
	out, err := exec.Command("openssl", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestPKCS11Ceremony: the root key is made in a SoftHSM2 token (sensitive,
// never extractable, sign only), the state and transcript name the module,
// token, key label and CKA_ID, and later steps, opening the key from the
// state, sign an intermediate and a CRL that openssl verifies. A wrong PIN
// signs nothing.
func TestPKCS11Ceremony(t *testing.T) {
	for _, alg := range []pki.KeyAlgorithm{pki.ECDSAP384, pki.RSA3072} {
		t.Run(string(alg), func(t *testing.T) {
			ctx := context.Background()
			tk := softhsmtest.New(t, "ceremony")
			l := newLinter(t)
			clk := clock.NewFake(start)
			dir := filepath.Join(t.TempDir(), "root")
			spec := rootSpec()
			spec.KeyAlg = alg
			ks := tokenKey(t, tk, rootLabel, false)
			d, e, err := ceremony.CreateRoot(ctx, newSession(l, clk), dir, ks, spec)
			if err != nil {
				t.Fatalf("CreateRoot: %v", err)
			}
			if err := ks.Close(); err != nil {
				t.Fatal(err)
			}
			st := d.State()
			ref := st.Key.PKCS11
			if st.Key.Source != ceremony.SourcePKCS11 || ref == nil || ref.Module != tk.Module || ref.TokenLabel != "ceremony" || ref.TokenSerial == "" ||
				ref.KeyLabel != rootLabel || len(ref.KeyID) != 32 {
				t.Fatalf("state key = %+v %+v", st.Key, ref)
			}
			if !strings.Contains(tk.Run(t, "softhsm2-util", "--show-slots"), ref.TokenSerial) {
				t.Errorf("token serial %s is not the token's", ref.TokenSerial)
			}
			var id strings.Builder
			raw, _ := hex.DecodeString(ref.KeyID)
			for _, b := range raw {
				id.WriteString("%" + strings.ToUpper(hex.EncodeToString([]byte{b})))
			}
			if want := "pkcs11:token=ceremony;serial=" + ref.TokenSerial + ";object=root%3AExample%20Offline%20Root;id=" + id.String() + ";type=private"; st.Key.Location != want {
				t.Errorf("location %s, want %s", st.Key.Location, want)
			}
			if e.Key.PKCS11 == nil || *e.Key.PKCS11 != *ref || e.Key.SPKISHA256 != st.KeySPKISHA256 || e.Key.Algorithm != alg {
				t.Errorf("transcript key = %+v", e.Key)
			}
			if _, err := os.Stat(filepath.Join(dir, ceremony.KeyFileName)); !os.IsNotExist(err) {
				t.Errorf("a key file is in the ceremony directory: %v", err)
			}
			list := tk.Tool(t, "--list-objects")
			objs := softhsmtest.ParseListObjects(list)
			if acc, ok := objs["Private Key Object/"+rootLabel]; !ok || !softhsmtest.Safe(acc) {
				t.Errorf("root key in the token: %v (found %v)", acc, ok)
			}
			if u := privateKeyUsage(list, rootLabel); u != "sign" {
				t.Errorf("root key usage %q, want sign only\n%s", u, list)
			}

			// Sign an intermediate in a later step, the key found from the state.
			clk.Set(start.Add(day))
			d, err = ceremony.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			csr, _ := newCSR(t, "Example Issuing CA")
			plan, err := d.PlanIntermediate(newSession(l, clk), csr, intermediate())
			if err != nil {
				t.Fatal(err)
			}
			// A wrong PIN is refused, and nothing is signed.
			bad := reopen(t, d, "9999\n")
			if _, err := plan.Sign(ctx, bad); !errors.Is(err, pkcs11.ErrPIN) || !strings.Contains(err.Error(), "the token refused the PIN") {
				t.Errorf("Sign with a wrong PIN: %v", err)
			}
			bad.Close()
			if n := len(d.State().Issued); n != 0 || len(transcript(t, d)) != 1 {
				t.Fatalf("a refused PIN left %d issued, %d transcript lines", n, len(transcript(t, d)))
			}
			good := reopen(t, d, softhsmtest.PIN+"\n")
			signed, err := plan.Sign(ctx, good)
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			good.Close()
			if got := signed.Entry.Key; got.PKCS11 == nil || *got.PKCS11 != *ref {
				t.Errorf("sign transcript key = %+v", got)
			}
			work := t.TempDir()
			rootPEM := filepath.Join(dir, ceremony.RootFileName)
			inter := filepath.Join(work, "issuing.pem")
			if err := os.WriteFile(inter, pki.CertPEM(signed.Cert.Raw), 0o644); err != nil {
				t.Fatal(err)
			}
			at := strconv.FormatInt(start.Add(2*day).Unix(), 10)
			if out := openssl(t, "verify", "-attime", at, "-CAfile", rootPEM, inter); !strings.Contains(out, "issuing.pem: OK") {
				t.Errorf("openssl verify: %s", out)
			}

			// The root's CRL, revoking it, signed in the token.
			good = reopen(t, d, softhsmtest.PIN)
			c, err := d.SignCRL(ctx, newSession(l, clk), good, ceremony.CRLSpec{
				Revoke: []ceremony.Revocation{{Serial: plan.Serial, Reason: pki.ReasonCACompromise}}, NextUpdate: 90 * day,
			})
			good.Close()
			if err != nil {
				t.Fatalf("SignCRL: %v", err)
			}
			crlFile := filepath.Join(work, "root.crl")
			if err := os.WriteFile(crlFile, c.DER, 0o644); err != nil {
				t.Fatal(err)
			}
			if out := openssl(t, "crl", "-inform", "DER", "-in", crlFile, "-CAfile", rootPEM, "-noout", "-text"); !strings.Contains(out, "verify OK") ||
				!strings.Contains(strings.ToUpper(out), strings.ToUpper(plan.Serial)) {
				t.Errorf("openssl crl: %s", out)
			}
			tr := transcript(t, d)
			if len(tr) != 3 || tr[2].Action != ceremony.ActionCRLSign || tr[2].Key.PKCS11 == nil || tr[2].Key.PKCS11.KeyID != ref.KeyID {
				t.Errorf("transcript = %+v", tr)
			}
		})
	}
}

// TestPKCS11Adopt: a key made with pkcs11-tool is adopted by its label
// (its type becomes the root's), kept when the root is not made, and a
// key that may be extracted is refused. A state pointing at another key
// of the token signs nothing.
func TestPKCS11Adopt(t *testing.T) {
	ctx := context.Background()
	tk := softhsmtest.New(t, "adopt")
	l := newLinter(t)
	clk := clock.NewFake(start)
	tk.Tool(t, "--keypairgen", "--key-type", "EC:secp384r1", "--label", "hsm-root", "--id", "0a0b", "--usage-sign", "--sensitive")
	tk.Tool(t, "--keypairgen", "--key-type", "EC:prime256v1", "--label", "other", "--id", "0c", "--usage-sign", "--sensitive")
	tk.Tool(t, "--keypairgen", "--key-type", "EC:secp384r1", "--label", "loose", "--id", "0d", "--usage-sign", "--extractable")

	// The wrong type: refused, and the key stays in the token.
	dir := filepath.Join(t.TempDir(), "root")
	ks := tokenKey(t, tk, "hsm-root", true)
	spec := rootSpec()
	spec.KeyAlg = pki.ECDSAP256
	if _, _, err := ceremony.CreateRoot(ctx, newSession(l, clk), dir, ks, spec); !errors.Is(err, ceremony.ErrInvalid) || !strings.Contains(err.Error(), "is ecdsa-p384, not ecdsa-p256") {
		t.Errorf("CreateRoot adopting a P-384 key as P-256: %v", err)
	}
	ks.Close()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("a refused root left %s: %v", dir, err)
	}
	if _, ok := tk.Objects(t)["Private Key Object/hsm-root"]; !ok {
		t.Fatal("a refused root destroyed the adopted key")
	}

	ks = tokenKey(t, tk, "loose", true)
	if _, err := ks.Open(ctx); !errors.Is(err, pkcs11.ErrUnsafeKey) || !strings.Contains(err.Error(), "extractable") {
		t.Errorf("adopting an extractable key: %v", err)
	}
	ks.Close()

	ks = tokenKey(t, tk, "hsm-root", true)
	d, _, err := ceremony.CreateRoot(ctx, newSession(l, clk), dir, ks, rootSpec())
	if err != nil {
		t.Fatalf("CreateRoot adopting: %v", err)
	}
	ks.Close()
	if r := d.State().Key.PKCS11; r.KeyLabel != "hsm-root" || r.KeyID != "0a0b" || d.State().KeyAlgorithm != pki.ECDSAP384 {
		t.Errorf("state key = %+v", r)
	}

	// The state and the transcript's root.create entry both rewritten,
	// the chain recomputed, to name the token's other key: nothing is
	// signed, whether the label recorded is the root key's or the other
	// key's.
	state := filepath.Join(dir, ceremony.StateFileName)
	orig, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	otherID := bytes.Replace(orig, []byte(`"key_id": "0a0b"`), []byte(`"key_id": "0c"`), 1)
	for _, tt := range []struct {
		name  string
		state []byte
		label string
		want  string
	}{
		{"CKA_ID", otherID, "hsm-root", `is labelled "other"; the ceremony recorded "hsm-root"`},
		{"CKA_ID and label", bytes.Replace(otherID, []byte(`"key_label": "hsm-root"`), []byte(`"key_label": "other"`), 1), "other", "is not the root certificate's key"},
	} {
		if err := os.WriteFile(state, tt.state, 0o600); err != nil {
			t.Fatal(err)
		}
		rewriteRootEntry(t, dir, func(e *ceremony.Entry) { e.Key.PKCS11.KeyID, e.Key.PKCS11.KeyLabel = "0c", tt.label })
		d, err = ceremony.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		ks = reopen(t, d, softhsmtest.PIN)
		_, err = d.SignCRL(ctx, newSession(l, clk), ks, ceremony.CRLSpec{NextUpdate: 30 * day})
		ks.Close()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("SignCRL with the %s of another key of the token: %v, want %q", tt.name, err, tt.want)
		}
	}
	if n := d.State().CRLNumber; n != 0 {
		t.Errorf("CRL number %d after refused steps", n)
	}
}

// rewriteRootEntry edits the transcript's first line with edit and
// recomputes the chain after it, as whoever can write the ceremony
// directory can: only the transcript head in the paper record tells.
func rewriteRootEntry(t *testing.T, dir string, edit func(*ceremony.Entry)) {
	t.Helper()
	path := filepath.Join(dir, ceremony.TranscriptFileName)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	prev := ""
	for i, line := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
		var e ceremony.Entry
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			edit(&e)
		}
		e.PrevSHA256 = prev
		line, err := json.Marshal(&e)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.Sum256(line)
		prev = hex.EncodeToString(h[:])
		out = append(append(out, line...), '\n')
	}
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
}

// failingReader fails every read.
type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("no randomness") }

// TestPKCS11RootRefused: a root that cannot be made after its key pair was
// generated destroys the pair, so the label is free for the next try; a
// label in use is refused and its key left alone.
func TestPKCS11RootRefused(t *testing.T) {
	ctx := context.Background()
	tk := softhsmtest.New(t, "refused")
	l := newLinter(t)
	dir := filepath.Join(t.TempDir(), "root")
	s := newSession(l, clock.NewFake(start))
	s.Rand = failingReader{} // the serial cannot be made
	ks := tokenKey(t, tk, rootLabel, false)
	if _, _, err := ceremony.CreateRoot(ctx, s, dir, ks, rootSpec()); err == nil {
		t.Fatal("CreateRoot without randomness succeeded")
	}
	ks.Close()
	objs := tk.Objects(t)
	if _, ok := objs["Private Key Object/"+rootLabel]; ok {
		t.Errorf("the generated key pair was left in the token: %v", objs)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("a refused root left %s: %v", dir, err)
	}

	tk.Tool(t, "--keypairgen", "--key-type", "EC:secp384r1", "--label", "taken", "--id", "01", "--usage-sign", "--sensitive")
	ks = tokenKey(t, tk, "taken", false)
	_, _, err := ceremony.CreateRoot(ctx, newSession(l, clock.NewFake(start)), dir, ks, rootSpec())
	ks.Close()
	if !errors.Is(err, pkcs11.ErrExists) || !strings.Contains(err.Error(), "choose another key label, or adopt that key") {
		t.Errorf("CreateRoot on a label in use: %v", err)
	}
	if _, ok := tk.Objects(t)["Private Key Object/taken"]; !ok {
		t.Error("the existing key under the label was destroyed")
	}
}

// copyModule copies the token's module to path.
func copyModule(t *testing.T, tk *softhsmtest.Token, path string) {
	t.Helper()
	b, err := os.ReadFile(tk.Module)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestPKCS11StateModule: ceremony.json alone never says which library is
// loaded with the token's PIN. A module, token serial or CKA_ID in the
// state that the transcript's root.create entry did not record is refused
// before anything is loaded; a module given explicitly is loaded only if
// it passes the module checks (one anybody may replace is refused), and
// never from inside the ceremony directory. The "proxy" is a copy of the
// real module, which would load, log in and sign.
func TestPKCS11StateModule(t *testing.T) {
	ctx := context.Background()
	tk := softhsmtest.New(t, "state-module")
	l := newLinter(t)
	clk := clock.NewFake(start)
	dir := filepath.Join(t.TempDir(), "root")
	ks := tokenKey(t, tk, rootLabel, false)
	d, _, err := ceremony.CreateRoot(ctx, newSession(l, clk), dir, ks, rootSpec())
	if err != nil {
		t.Fatalf("CreateRoot: %v", err)
	}
	ks.Close()
	ref := *d.State().Key.PKCS11
	proxy := filepath.Join(t.TempDir(), "proxy.so")
	copyModule(t, tk, proxy)
	signCRL := func(d *ceremony.Dir, u ceremony.PKCS11Unlock) error {
		u.PINFile = tk.PINFile(t)
		ks, err := d.KeySource(ceremony.Unlock{PKCS11: u})
		if err != nil {
			return err
		}
		defer ks.Close()
		_, err = d.SignCRL(ctx, newSession(l, clk), ks, ceremony.CRLSpec{NextUpdate: 30 * day})
		return err
	}

	state := filepath.Join(dir, ceremony.StateFileName)
	orig, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, from, to string }{
		{"module", `"module": "` + tk.Module + `"`, `"module": "` + proxy + `"`},
		{"token serial", `"token_serial": "` + ref.TokenSerial + `"`, `"token_serial": "0000000000000000"`},
		{"key ID", `"key_id": "` + ref.KeyID + `"`, `"key_id": "0c"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if !bytes.Contains(orig, []byte(tt.from)) {
				t.Fatalf("the state does not hold %s", tt.from)
			}
			if err := os.WriteFile(state, bytes.Replace(orig, []byte(tt.from), []byte(tt.to), 1), 0o600); err != nil {
				t.Fatal(err)
			}
			d, err := ceremony.Open(dir)
			if err == nil {
				err = signCRL(d, ceremony.PKCS11Unlock{})
			}
			if !errors.Is(err, ceremony.ErrState) || !strings.Contains(err.Error(), ceremony.ActionRootCreate) {
				t.Errorf("a state naming another %s: %v, want ErrState naming the %s entry", tt.name, err, ceremony.ActionRootCreate)
			}
		})
	}
	if err := os.WriteFile(state, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	d, err = ceremony.Open(dir)
	if err != nil {
		t.Fatal(err)
	}

	// An explicit module that others may replace (/tmp is writable by
	// all) is refused before it is loaded.
	if err := signCRL(d, ceremony.PKCS11Unlock{Module: proxy}); !errors.Is(err, pkcs11.ErrUnsafeModule) {
		t.Errorf("an explicit module in /tmp: %v, want ErrUnsafeModule", err)
	}
	// One inside the ceremony directory is refused as such.
	inside := filepath.Join(dir, "p11.so")
	copyModule(t, tk, inside)
	if err := signCRL(d, ceremony.PKCS11Unlock{Module: inside}); !errors.Is(err, ceremony.ErrInvalid) || !strings.Contains(err.Error(), "inside the ceremony directory") {
		t.Errorf("an explicit module in the ceremony directory: %v, want a refusal saying so", err)
	}
	if n := d.State().CRLNumber; n != 0 {
		t.Fatalf("CRL number %d after refused steps", n)
	}
	// The module recorded signs.
	if err := signCRL(d, ceremony.PKCS11Unlock{}); err != nil {
		t.Fatalf("SignCRL with the module recorded: %v", err)
	}
}
