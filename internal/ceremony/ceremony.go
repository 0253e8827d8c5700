// Package ceremony owns the offline root: the steps run on an air-gapped
// machine with no server and no database — create the root key and
// self-signed certificate (CreateRoot), sign a subordinate CA's CSR
// (Dir.PlanIntermediate, then Plan.Sign) and sign the root's CRL
// (Dir.SignCRL) — and the ceremony directory that keeps, between steps,
// the root certificate, the root key (through a KeySource: a
// passphrase-encrypted file, or a reference to a key in a PKCS#11 token),
// a copy of everything signed, the CRL state and an append-only,
// hash-chained transcript of who did what, when and with which key.
package ceremony

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/certwright/certwright/internal/atomicfile"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/pki"
)

// Files of a ceremony directory.
const (
	StateFileName      = "ceremony.json"
	RootFileName       = "root.pem"
	TranscriptFileName = "transcript.jsonl"
	IssuedDirName      = "issued"
	CRLDirName         = "crls"
)

// stateVersion is the version of ceremony.json this package writes.
const stateVersion = 1

// Limits on what is read back from a ceremony directory and from the
// operator's files.
const (
	maxStateFile      = 4 << 20
	maxTranscriptFile = 64 << 20
	maxTranscriptLine = 64 << 10
	// MaxCSR bounds a CSR file; pki.ParseCSR enforces the same bound.
	MaxCSR = pki.MaxPEMInput
)

// Errors a caller branches on.
var (
	// ErrInvalid marks a request that breaks a rule (a bad flag value, a
	// CSR that does not verify, a path length the root does not allow).
	ErrInvalid = errors.New("ceremony: invalid request")
	// ErrState marks a ceremony directory that is missing, incomplete or
	// altered: state, root certificate and transcript must agree.
	ErrState = errors.New("ceremony: ceremony directory unusable")
)

// Linter lints a to-be-signed certificate as the server does before it
// signs (*lint.Linter).
type Linter interface {
	Check(tmpl *x509.Certificate, pub crypto.PublicKey, issuer *x509.Certificate, cabf bool) ([]string, error)
}

// Session is who runs a ceremony step, where, and with what: every step
// takes one.
type Session struct {
	Clock  clock.Clock
	Rand   io.Reader // nil means crypto/rand
	Linter Linter
	// Host is the machine's name, for the transcript.
	Host string
	// Operators are the people present, for the transcript; at least one.
	Operators []string
}

const maxOperatorName = 128

func (s *Session) check() error {
	if s.Clock == nil || s.Linter == nil {
		return errors.New("ceremony: a session needs a clock and a linter")
	}
	if s.Rand == nil {
		s.Rand = rand.Reader
	}
	if strings.TrimSpace(s.Host) == "" {
		return fmt.Errorf("%w: the host name is empty", ErrInvalid)
	}
	if len(s.Operators) == 0 {
		return fmt.Errorf("%w: name the operators present (at least one --operator NAME): the transcript records who ran each step", ErrInvalid)
	}
	for i, o := range s.Operators {
		o = strings.TrimSpace(o)
		if o == "" || len(o) > maxOperatorName || strings.ContainsFunc(o, unicode.IsControl) {
			return fmt.Errorf("%w: operator %q: give 1 to %d printable characters", ErrInvalid, s.Operators[i], maxOperatorName)
		}
		s.Operators[i] = o
	}
	return nil
}

// now is the session's time, to the second (certificates and CRLs carry
// seconds).
func (s *Session) now() time.Time { return s.Clock.Now().UTC().Truncate(time.Second) }

// State is what a ceremony directory remembers between steps
// (ceremony.json).
type State struct {
	Version int `json:"version"`
	// Key is where the root key is; KeyAlgorithm and KeySPKISHA256 say
	// which key it is.
	Key           KeyRef           `json:"key"`
	KeyAlgorithm  pki.KeyAlgorithm `json:"key_algorithm"`
	KeySPKISHA256 string           `json:"key_spki_sha256"`
	// RootSHA256 is the fingerprint of root.pem.
	RootSHA256 string `json:"root_sha256"`
	// Issued counts and lists the certificates the root signed, in order;
	// Seq is the counter (1, 2, ...) their copies in issued/ are named by.
	Issued []Issued `json:"issued"`
	// CRLNumber is the number of the last CRL signed; the next is one more.
	CRLNumber int64 `json:"crl_number"`
	// Revoked lists the certificates the root's CRLs list.
	Revoked []Revoked `json:"revoked"`
}

// Issued is one certificate the root signed.
type Issued struct {
	Seq       int       `json:"seq"`
	Serial    string    `json:"serial"`
	Subject   string    `json:"subject"`
	SHA256    string    `json:"sha256"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	File      string    `json:"file"`
	SignedAt  time.Time `json:"signed_at"`
}

// Revoked is one certificate the root revoked.
type Revoked struct {
	Serial    string     `json:"serial"`
	Reason    pki.Reason `json:"reason"`
	RevokedAt time.Time  `json:"revoked_at"`
}

// Dir is an opened ceremony directory.
type Dir struct {
	path  string
	state State
	root  *x509.Certificate
	tail  transcriptTail
}

// Path is the directory.
func (d *Dir) Path() string { return d.path }

// Root is the root certificate.
func (d *Dir) Root() *x509.Certificate { return d.root }

// State returns a copy of the directory's state.
func (d *Dir) State() State {
	s := d.state
	s.Issued = append([]Issued(nil), d.state.Issued...)
	s.Revoked = append([]Revoked(nil), d.state.Revoked...)
	return s
}

// KeySource returns the source of the root key the state names; u unlocks
// it (a key file's passphrase, or a token's PIN).
func (d *Dir) KeySource(u Unlock) (KeySource, error) {
	return OpenKeySource(d.path, d.state.Key, u)
}

// Open reads a ceremony directory made by CreateRoot and checks that its
// state, root certificate and transcript agree.
func Open(path string) (*Dir, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w (create one with certwright ceremony root)", ErrState, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%w: %s is not a directory", ErrState, path)
	}
	data, err := readLimited(filepath.Join(path, StateFileName), maxStateFile)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrState, err)
	}
	var s State
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrState, StateFileName, err)
	}
	if s.Version != stateVersion {
		return nil, fmt.Errorf("%w: %s is version %d; this build reads version %d", ErrState, StateFileName, s.Version, stateVersion)
	}
	rootPEM, err := readLimited(filepath.Join(path, RootFileName), pki.MaxPEMInput)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrState, err)
	}
	certs, err := pki.ParseCertificates(rootPEM)
	if err != nil || len(certs) != 1 {
		return nil, fmt.Errorf("%w: %s must hold exactly the root certificate (%v)", ErrState, RootFileName, err)
	}
	root := certs[0]
	if got := pki.Fingerprint(root.Raw); got != s.RootSHA256 {
		return nil, fmt.Errorf("%w: %s has SHA-256 %s, but the state records %s: the root certificate was replaced", ErrState, RootFileName, got, s.RootSHA256)
	}
	if !pki.SelfSigned(root) {
		return nil, fmt.Errorf("%w: %s is not a self-signed certificate", ErrState, RootFileName)
	}
	if spki := spkiSHA256(root.RawSubjectPublicKeyInfo); spki != s.KeySPKISHA256 {
		return nil, fmt.Errorf("%w: the root certificate's key (SPKI SHA-256 %s) is not the key the state records (%s)", ErrState, spki, s.KeySPKISHA256)
	}
	tail, first, err := readTranscript(filepath.Join(path, TranscriptFileName))
	if err != nil {
		return nil, err
	}
	if err := s.checkRootEntry(first); err != nil {
		return nil, err
	}
	return &Dir{path: path, state: s, root: root, tail: tail}, nil
}

// checkRootEntry checks the state against the transcript's first entry,
// root.create: the same root certificate and key, found in the same place.
// The state is rewritten at every step; the transcript line is written
// once, and its hash is anchored by each later line and by the paper
// record (TranscriptHead). So a state that names another key file, or
// another PKCS#11 module, token or key than the root was made with (a
// library that would log in with the PIN and sign, say) is refused, and
// no module is ever loaded on the state's word alone.
func (s *State) checkRootEntry(e *Entry) error {
	if e.Action != ActionRootCreate || e.Certificate == nil {
		return fmt.Errorf("%w: the transcript's first line is %q, not the %s entry", ErrState, e.Action, ActionRootCreate)
	}
	if e.Certificate.SHA256 != s.RootSHA256 || e.Key.SPKISHA256 != s.KeySPKISHA256 || e.Key.Algorithm != s.KeyAlgorithm {
		return fmt.Errorf("%w: %s records root %s with key %s, but the transcript's %s entry recorded root %s with key %s",
			ErrState, StateFileName, s.RootSHA256, s.KeySPKISHA256, ActionRootCreate, e.Certificate.SHA256, e.Key.SPKISHA256)
	}
	have, want := s.Key, KeyRef{Source: e.Key.Source, Location: e.Key.Location, PKCS11: e.Key.PKCS11}
	if have.Source != want.Source || have.Location != want.Location || (have.PKCS11 == nil) != (want.PKCS11 == nil) ||
		(have.PKCS11 != nil && *have.PKCS11 != *want.PKCS11) {
		return fmt.Errorf("%w: %s says the root key is %s, but the transcript's %s entry recorded %s: the state was altered; nothing is loaded or opened from it (copy the key's place back from transcript line 1)",
			ErrState, StateFileName, describeKey(have), ActionRootCreate, describeKey(want))
	}
	return nil
}

// describeKey names where a key is, for a refusal.
func describeKey(r KeyRef) string {
	if p := r.PKCS11; p != nil {
		return fmt.Sprintf("in PKCS#11 module %s, token %q serial %q, key %q CKA_ID %s", p.Module, p.TokenLabel, p.TokenSerial, p.KeyLabel, p.KeyID)
	}
	return fmt.Sprintf("%s %s", r.Source, r.Location)
}

// save writes the state atomically.
func (d *Dir) save(s State) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("ceremony: encode state: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(d.path, StateFileName), append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("ceremony: %w", err)
	}
	d.state = s
	return nil
}

// openSigner opens the root key from keys and checks that it is the key of
// the root certificate, so a wrong or altered key file never signs.
func (d *Dir) openSigner(ctx context.Context, keys KeySource) (crypto.Signer, error) {
	sg, err := keys.Open(ctx)
	if err != nil {
		return nil, err
	}
	if err := samePublic(sg.Public(), d.root.PublicKey); err != nil {
		return nil, fmt.Errorf("ceremony: the key in %s is not the root certificate's key: %w", keys.Ref().Location, err)
	}
	return sg, nil
}

func samePublic(a, b crypto.PublicKey) error {
	ea, err1 := x509.MarshalPKIXPublicKey(a)
	eb, err2 := x509.MarshalPKIXPublicKey(b)
	if err1 != nil || err2 != nil || !bytes.Equal(ea, eb) {
		return errors.New("public keys differ")
	}
	return nil
}

// spkiSHA256 is the hex SHA-256 of a DER SubjectPublicKeyInfo, the key
// fingerprint the transcript and the server's inventory use.
func spkiSHA256(spki []byte) string {
	h := sha256.Sum256(spki)
	return hex.EncodeToString(h[:])
}

// CertInfo describes a certificate in the transcript.
type CertInfo struct {
	Subject   string    `json:"subject"`
	Issuer    string    `json:"issuer"`
	Serial    string    `json:"serial"`
	SHA256    string    `json:"sha256"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	// PathLen is the basicConstraints path length; -1 for none.
	PathLen int `json:"path_len"`
	// CRLURL and CAIssuersURL are the URLs a subordinate certificate
	// points relying parties to.
	CRLURL       string `json:"crl_url,omitempty"`
	CAIssuersURL string `json:"ca_issuers_url,omitempty"`
	SPKISHA256   string `json:"spki_sha256"`
}

func certInfo(c *x509.Certificate) *CertInfo {
	i := &CertInfo{
		Subject: c.Subject.String(), Issuer: c.Issuer.String(), Serial: pki.SerialHex(c.SerialNumber),
		SHA256: pki.Fingerprint(c.Raw), NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC(),
		PathLen: pathLenOf(c), SPKISHA256: spkiSHA256(c.RawSubjectPublicKeyInfo),
	}
	if len(c.CRLDistributionPoints) > 0 {
		i.CRLURL = c.CRLDistributionPoints[0]
	}
	if len(c.IssuingCertificateURL) > 0 {
		i.CAIssuersURL = c.IssuingCertificateURL[0]
	}
	return i
}

func pathLenOf(c *x509.Certificate) int {
	if c.MaxPathLen == 0 && !c.MaxPathLenZero {
		return -1
	}
	return c.MaxPathLen
}

// ParseDuration reads a validity or a CRL lifetime: whole years ("20y",
// 365 days each), weeks ("2w"), days ("90d"), or a Go duration ("36h").
func ParseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	if n, ok := strings.CutSuffix(t, "y"); ok {
		v, err := strconv.Atoi(n)
		if err != nil || v <= 0 || v > 100 {
			return 0, fmt.Errorf("%q is not a duration like 20y, 90d, 2w or 36h", s)
		}
		return time.Duration(v) * 365 * 24 * time.Hour, nil
	}
	d, err := inventory.ParseWindow(t)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration like 20y, 90d, 2w or 36h", s)
	}
	return d, nil
}
