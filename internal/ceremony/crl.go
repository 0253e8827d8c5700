package ceremony

import (
	"context"
	"encoding/hex"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/certwright/certwright/internal/atomicfile"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/revoke/crl"
)

// Bounds of a root CRL's lifetime (thisUpdate to nextUpdate). A root's CRL
// is signed at a ceremony, so it lives long; CA/Browser Forum roots may go
// up to twelve months between CRLs.
const (
	minCRLLifetime = 24 * time.Hour
	maxCRLLifetime = 366 * 24 * time.Hour
)

// Revocation asks for one certificate the root signed to be revoked.
type Revocation struct {
	Serial string
	Reason pki.Reason
}

// CRLSpec is the root CRL to sign.
type CRLSpec struct {
	// Revoke are revocations to add; those of earlier CRLs stay listed.
	Revoke []Revocation
	// NextUpdate is the CRL's lifetime: sign and upload the next one
	// before it ends.
	NextUpdate time.Duration
}

// SignedCRL is a CRL the root signed.
type SignedCRL struct {
	DER        []byte
	Number     int64
	ThisUpdate time.Time
	NextUpdate time.Time
	Entries    int
	// File is the copy kept in the ceremony directory.
	File  string
	Entry *Entry
}

// SignCRL signs the root's next CRL: its number is one more than the last
// (never reused, even after a step that failed half-way), and it lists
// every certificate revoked at this ceremony or an earlier one. A serial
// to revoke must be one the root signed and has not revoked yet.
func (d *Dir) SignCRL(ctx context.Context, s Session, keys KeySource, spec CRLSpec) (*SignedCRL, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if spec.NextUpdate < minCRLLifetime || spec.NextUpdate > maxCRLLifetime {
		return nil, fmt.Errorf("%w: next update %s after this one: want 1 day to 366 days", ErrInvalid, spec.NextUpdate)
	}
	now := s.now()
	st := d.State()
	added, err := d.revocations(st, spec.Revoke, now)
	if err != nil {
		return nil, err
	}
	all := append(append([]Revoked(nil), st.Revoked...), added...)
	b := crl.NewBuilder(len(all))
	for _, r := range all {
		serial, err := hex.DecodeString(padHex(r.Serial))
		if err != nil {
			return nil, fmt.Errorf("%w: revoked serial %q in the state", ErrState, r.Serial)
		}
		if err := b.Add(crl.Entry{Serial: serial, RevokedAt: r.RevokedAt, Reason: r.Reason}); err != nil {
			return nil, fmt.Errorf("ceremony: CRL entry %s: %w", r.Serial, err)
		}
	}
	number := st.CRLNumber + 1
	for {
		if _, err := os.Lstat(filepath.Join(d.path, crlFile(number))); os.IsNotExist(err) {
			break
		}
		// A step that failed after writing its copy may have handed the
		// CRL out: its number is never signed again.
		number++
	}
	signer, err := d.openSigner(ctx, keys)
	if err != nil {
		return nil, err
	}
	next := now.Add(spec.NextUpdate)
	der, err := b.Sign(s.Rand, crl.Params{Issuer: d.root, Signer: signer, Number: big.NewInt(number), ThisUpdate: now, NextUpdate: next})
	if err != nil {
		return nil, fmt.Errorf("ceremony: sign the CRL: %w", err)
	}
	if err := atomicfile.WriteNew(filepath.Join(d.path, crlFile(number)), der, 0o644); err != nil {
		return nil, err
	}
	st.CRLNumber, st.Revoked = number, all
	if err := d.save(st); err != nil {
		return nil, err
	}
	e := d.entry(&s, ActionCRLSign, now, keys.Ref())
	e.CRL = &CRLInfo{Number: number, ThisUpdate: now, NextUpdate: next, Entries: len(all), SHA256: pki.Fingerprint(der), Revoked: added}
	if err := appendEntry(d.path, &d.tail, e); err != nil {
		return nil, fmt.Errorf("%w (the CRL was signed and kept in %s)", err, crlFile(number))
	}
	return &SignedCRL{DER: der, Number: number, ThisUpdate: now, NextUpdate: next, Entries: len(all), File: crlFile(number), Entry: e}, nil
}

// crlFile is the copy of CRL number in the ceremony directory.
func crlFile(number int64) string { return filepath.Join(CRLDirName, fmt.Sprintf("%04d.crl", number)) }

// padHex makes a hex string an even number of digits long.
func padHex(s string) string {
	if len(s)%2 == 1 {
		return "0" + s
	}
	return s
}

// revocations checks the revocations asked for against the state and
// returns them as recorded at now.
func (d *Dir) revocations(st State, req []Revocation, now time.Time) ([]Revoked, error) {
	issued := map[string]bool{}
	for _, i := range st.Issued {
		issued[i.Serial] = true
	}
	revoked := map[string]Revoked{}
	for _, r := range st.Revoked {
		revoked[r.Serial] = r
	}
	var out []Revoked
	for _, r := range req {
		serial, err := pki.NormalizeSerial(r.Serial)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		if !r.Reason.Valid() {
			return nil, fmt.Errorf("%w: revocation reason code %d (one of %v)", ErrInvalid, int(r.Reason), pki.ReasonNames())
		}
		if !issued[serial] {
			return nil, fmt.Errorf("%w: serial %s: this root signed no certificate with that serial (see %s and %s)", ErrInvalid, serial, IssuedDirName, StateFileName)
		}
		if old, ok := revoked[serial]; ok {
			return nil, fmt.Errorf("%w: serial %s was revoked on %s (%s); it stays on every CRL", ErrInvalid, serial, old.RevokedAt.Format(time.RFC3339), old.Reason)
		}
		rec := Revoked{Serial: serial, Reason: r.Reason, RevokedAt: now}
		revoked[serial] = rec
		out = append(out, rec)
	}
	return out, nil
}
