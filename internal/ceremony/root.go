package ceremony

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/certwright/certwright/internal/atomicfile"
	"github.com/certwright/certwright/internal/ca"
	"github.com/certwright/certwright/internal/pki"
)

// RootSpec is the offline root CA to create.
type RootSpec struct {
	CommonName   string
	Organization string
	KeyAlg       pki.KeyAlgorithm
	Validity     time.Duration
	// PathLen is the number of CAs allowed below the root: 1 for root →
	// issuing CA → leaf, as the server's own root.
	PathLen int
}

// RootKeyAlgorithms are the key types an offline root may have: ECDSA
// P-384 (the default, as the server's root), P-256, and RSA of 3072 or
// 4096 bits. RSA-2048 is too short for a root meant to last decades.
func RootKeyAlgorithms() []pki.KeyAlgorithm {
	return []pki.KeyAlgorithm{pki.ECDSAP384, pki.ECDSAP256, pki.RSA4096, pki.RSA3072}
}

// Bounds of a root's and a subordinate CA's validity.
const (
	minValidity = 24 * time.Hour
	maxValidity = 30 * 365 * 24 * time.Hour
	// maxNameField is the X.520 upper bound of a common name and an
	// organisation name (RFC 5280 appendix A.1).
	maxNameField = 64
)

func (r *RootSpec) check() error {
	if r.CommonName == "" || len(r.CommonName) > maxNameField {
		return fmt.Errorf("%w: the root's common name is required, at most %d characters", ErrInvalid, maxNameField)
	}
	if len(r.Organization) > maxNameField {
		return fmt.Errorf("%w: organisation: at most %d characters", ErrInvalid, maxNameField)
	}
	if !slices.Contains(RootKeyAlgorithms(), r.KeyAlg) {
		return fmt.Errorf("%w: key %q: a root key is one of %v", ErrInvalid, r.KeyAlg, RootKeyAlgorithms())
	}
	if err := checkValidity(r.Validity); err != nil {
		return err
	}
	if r.PathLen < -1 || r.PathLen > 8 {
		return fmt.Errorf("%w: path length %d: want -1 (unlimited) to 8", ErrInvalid, r.PathLen)
	}
	return nil
}

func checkValidity(d time.Duration) error {
	if d < minValidity || d > maxValidity {
		return fmt.Errorf("%w: validity %s: want 1 day to 30 years", ErrInvalid, d)
	}
	return nil
}

// CreateRoot creates the ceremony directory path (mode 0700; an existing
// empty directory will do), the root key in keys, and the self-signed root
// certificate as the server makes its roots (ca.Template: keyCertSign,
// cRLSign and digitalSignature, CA with the path length, subject key
// identifier), linted before the key signs it. The directory holds
// root.pem, ceremony.json and the transcript's first line. On failure
// nothing is left behind: a key generated for the root is discarded (a key
// file removed, a key pair in a token destroyed; an adopted key stays).
func CreateRoot(ctx context.Context, s Session, path string, keys KeySource, spec RootSpec) (_ *Dir, _ *Entry, err error) {
	if err := s.check(); err != nil {
		return nil, nil, err
	}
	if err := spec.check(); err != nil {
		return nil, nil, err
	}
	created, err := makeDir(path)
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		if err == nil {
			return
		}
		// The key is discarded first: in a token it outlives the directory.
		if derr := keys.Discard(context.WithoutCancel(ctx)); derr != nil {
			err = fmt.Errorf("%w; and %w", err, derr)
		}
		if created {
			os.RemoveAll(path)
			return
		}
		for _, f := range []string{StateFileName, RootFileName, TranscriptFileName, IssuedDirName, CRLDirName} {
			os.RemoveAll(filepath.Join(path, f))
		}
	}()
	for _, sub := range []string{IssuedDirName, CRLDirName} {
		if err := os.Mkdir(filepath.Join(path, sub), 0o700); err != nil {
			return nil, nil, fmt.Errorf("ceremony: %w", err)
		}
	}
	signer, err := keys.Generate(ctx, spec.KeyAlg)
	if err != nil {
		return nil, nil, err
	}
	now := s.now()
	serial, err := pki.NewSerialAt(s.Rand, now)
	if err != nil {
		return nil, nil, err
	}
	subject := pkix.Name{CommonName: spec.CommonName}
	if spec.Organization != "" {
		subject.Organization = []string{spec.Organization}
	}
	tmpl, err := ca.Template(&ca.Spec{Subject: subject, KeyAlg: spec.KeyAlg, Validity: spec.Validity, MaxPathLen: spec.PathLen},
		signer.Public(), serial, now, nil, ca.URLs{})
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	tmpl.AuthorityKeyId = tmpl.SubjectKeyId
	tmpl.SignatureAlgorithm = pki.SignatureAlgorithmFor(signer.Public())
	if _, err := s.Linter.Check(tmpl, signer.Public(), nil, false); err != nil {
		return nil, nil, fmt.Errorf("ceremony: the root certificate fails lint: %w", err)
	}
	der, err := x509.CreateCertificate(s.Rand, tmpl, tmpl, signer.Public(), signer)
	if err != nil {
		return nil, nil, fmt.Errorf("ceremony: self-sign the root: %w", err)
	}
	root, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("ceremony: parse the root: %w", err)
	}
	if !pki.SelfSigned(root) {
		return nil, nil, errors.New("ceremony: the root's self-signature does not verify")
	}
	if err := atomicfile.WriteNew(filepath.Join(path, RootFileName), pki.CertPEM(der), 0o644); err != nil {
		return nil, nil, err
	}
	d := &Dir{path: path, root: root}
	ref := keys.Ref()
	st := State{
		Version: stateVersion, Key: ref, KeyAlgorithm: spec.KeyAlg,
		KeySPKISHA256: spkiSHA256(root.RawSubjectPublicKeyInfo), RootSHA256: pki.Fingerprint(der),
		Issued: []Issued{}, Revoked: []Revoked{},
	}
	if err := d.save(st); err != nil {
		return nil, nil, err
	}
	e := d.entry(&s, ActionRootCreate, now, ref)
	e.Certificate = certInfo(root)
	if err := appendEntry(path, &d.tail, e); err != nil {
		return nil, nil, err
	}
	return d, e, nil
}

// makeDir creates dir with mode 0700, or takes an existing empty directory
// (a mounted medium, say) and sets its mode. created says which.
func makeDir(dir string) (created bool, err error) {
	err = os.Mkdir(dir, 0o700)
	if err == nil {
		return true, atomicfile.SyncDir(filepath.Dir(dir))
	}
	if !errors.Is(err, os.ErrExist) {
		return false, fmt.Errorf("ceremony: create %s: %w", dir, err)
	}
	entries, rerr := os.ReadDir(dir)
	if rerr != nil {
		return false, fmt.Errorf("ceremony: %s: %w", dir, rerr)
	}
	if len(entries) > 0 {
		return false, fmt.Errorf("%w: %s exists and is not empty: a ceremony directory holds one root; choose a new directory", ErrInvalid, dir)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return false, fmt.Errorf("ceremony: %w", err)
	}
	return false, nil
}
