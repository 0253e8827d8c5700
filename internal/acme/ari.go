package acme

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/lifecycle"
	"github.com/certwright/certwright/internal/pki"
)

// CertID is a certificate's RFC 9773 identifier: the base64url authority
// key identifier, ".", and the base64url DER content of the serial number.
func CertID(cert *x509.Certificate) string {
	return certID(cert.AuthorityKeyId, cert.SerialNumber)
}

func certID(aki []byte, serial *big.Int) string {
	// The DER INTEGER's content: big-endian, with a leading zero byte when
	// the high bit is set (serials are positive).
	b := serial.Bytes()
	if len(b) == 0 || b[0]&0x80 != 0 {
		b = append([]byte{0}, b...)
	}
	return base64.RawURLEncoding.EncodeToString(aki) + "." + base64.RawURLEncoding.EncodeToString(b)
}

// parseCertID splits an RFC 9773 identifier. Only the base64url alphabet
// and the one '.' are accepted: encoding/base64 skips '\r' and '\n' while
// decoding, so without this check an ID with line breaks in it would name
// a certificate (and be echoed into logs and problem details as given).
func parseCertID(id string) (aki []byte, serial string, err error) {
	bad := func() (aki []byte, serial string, err error) {
		return nil, "", NewProblem(ErrMalformed, "certificate ID %q is not AKI.serial in base64url", clipID(id))
	}
	if len(id) > 200 || !certIDChars(id) {
		return bad()
	}
	a, s, ok := strings.Cut(id, ".")
	if !ok || a == "" || s == "" {
		return bad()
	}
	aki, err1 := base64.RawURLEncoding.DecodeString(a)
	sb, err2 := base64.RawURLEncoding.DecodeString(s)
	if err1 != nil || err2 != nil || len(sb) == 0 || sb[0]&0x80 != 0 {
		return bad()
	}
	return aki, pki.SerialHex(new(big.Int).SetBytes(sb)), nil
}

// certIDChars reports whether id holds only base64url characters and
// exactly one '.'.
func certIDChars(id string) bool {
	dots := 0
	for _, c := range []byte(id) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
		case c == '.':
			dots++
		default:
			return false
		}
	}
	return dots == 1
}

// clipID bounds a client's ID quoted in a problem.
func clipID(id string) string {
	if len(id) > 64 {
		return id[:64] + "..."
	}
	return id
}

// certificateByID finds the certificate an RFC 9773 ID names.
func (s *Service) certificateByID(ctx context.Context, id string) (*inventory.Certificate, error) {
	aki, serial, err := parseCertID(id)
	if err != nil {
		return nil, err
	}
	c, err := s.store.GetCertificate(ctx, serial)
	if errors.Is(err, ErrNotFound) {
		return nil, notFound("certificate", id)
	}
	if err != nil {
		return nil, fmt.Errorf("acme: certificate %s: %w", serial, err)
	}
	leaf, err := x509.ParseCertificate(c.DER)
	if err != nil || !bytes.Equal(leaf.AuthorityKeyId, aki) {
		return nil, notFound("certificate", id)
	}
	return c, nil
}

// RenewalInfo is a certificate's suggested renewal window (RFC 9773).
type RenewalInfo struct {
	Start, End     time.Time
	ExplanationURL string
	// RetryAfter is when the client should ask again.
	RetryAfter time.Duration
}

// Window computes a certificate's suggested renewal window
// (lifecycle.Window: the agent and ACME clients get the same answer).
func Window(c *inventory.Certificate, renewBeforeDays int) (start, end time.Time) {
	return lifecycle.Window(c, renewBeforeDays)
}

// RenewalInfo returns the renewal window of the certificate certID names.
func (s *Service) RenewalInfo(ctx context.Context, certID string) (*RenewalInfo, error) {
	c, err := s.certificateByID(ctx, certID)
	if err != nil {
		return nil, err
	}
	renewBefore := 0
	if prof, err := s.profiles.Get(ctx, c.Profile); err == nil {
		renewBefore = prof.RenewBeforeDays
	}
	start, end := Window(c, renewBefore)
	retry := s.cfg.RenewalInfoRetry
	return &RenewalInfo{Start: start.UTC().Truncate(time.Second), End: end.UTC().Truncate(time.Second), RetryAfter: retry}, nil
}

// checkReplaces accepts an order's replaces field when it names a
// certificate this account ordered, sharing an identifier with the new
// order, that no other order replaces already.
func (s *Service) checkReplaces(ctx context.Context, acct *Account, id string, idents []Identifier) error {
	if id == "" {
		return nil
	}
	c, err := s.certificateByID(ctx, id)
	if err != nil {
		if pb := AsProblem(err); pb != nil {
			pb.Detail = "replaces: " + pb.Detail
			pb.HTTPStatus = 0
		}
		return err
	}
	o, err := s.store.OrderByCertificate(ctx, c.Serial)
	if err != nil || o.AccountID != acct.ID {
		return NewProblem(ErrUnauthorized, "replaces: certificate %s was not ordered by this account", c.Serial)
	}
	shared := false
	for _, san := range c.SANs {
		if slices.ContainsFunc(idents, func(i Identifier) bool { return strings.EqualFold(i.Value, san) }) {
			shared = true
		}
	}
	if !shared {
		return NewProblem(ErrMalformed, "replaces: certificate %s shares no identifier with this order", c.Serial)
	}
	if prev, err := s.store.OrderReplacing(ctx, id); err == nil {
		return NewProblem(ErrAlreadyReplaced, "certificate %s is already replaced by order %s", c.Serial, prev.ID)
	} else if !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("acme: replaces: %w", err)
	}
	return nil
}

// RenewNow moves the renewal window of every matching unexpired,
// unrevoked certificate to now, so ARI-aware clients replace them at their
// next check. It needs cert:revoke over the selected CA and profile.
func (s *Service) RenewNow(ctx context.Context, p authz.Principal, sel RenewSelector) ([]string, error) {
	if sel.CAID == "" && sel.Profile == "" && sel.SAN == "" && sel.SPKISHA256 == "" && sel.Serial == "" {
		return nil, fmt.Errorf("%w: renew-now needs at least one of ca, profile, san, spki_sha256, serial", ErrInvalid)
	}
	res := authz.Resource{Profile: sel.Profile}
	if sel.CAID != "" {
		c, err := s.store.GetCA(ctx, sel.CAID)
		if err != nil {
			return nil, fmt.Errorf("acme: renew-now: %w", err)
		}
		sel.CAID, res.CAID, res.CAName = c.ID, c.ID, c.Name
	}
	if sel.Serial != "" {
		n, err := pki.NormalizeSerial(sel.Serial)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		sel.Serial = n
	}
	if sel.SAN != "" {
		res.Names = []string{sel.SAN}
	}
	if err := p.Allow(authz.PermCertRevoke, res); err != nil {
		return nil, err
	}
	now := s.cfg.Clock.Now()
	// A selector naming one certificate targets its serial, as its
	// issuance and revocation do, so the certificate's events find it.
	target := selectorString(sel)
	if sel.Serial != "" {
		target = sel.Serial
	}
	ev := audit.New(p, now, "acme.renew_now", target, map[string]any{
		"ca_id": sel.CAID, "profile": sel.Profile, "san": sel.SAN, "spki_sha256": sel.SPKISHA256, "serial": sel.Serial,
	})
	serials, err := s.store.MarkRenewNow(ctx, sel, now, ev)
	if err != nil {
		return nil, fmt.Errorf("acme: renew-now: %w", err)
	}
	s.cfg.Log.Info("acme renew-now", "selector", selectorString(sel), "certificates", len(serials), "by", p.Name)
	return serials, nil
}

func selectorString(sel RenewSelector) string {
	var parts []string
	for _, kv := range [][2]string{{"ca", sel.CAID}, {"profile", sel.Profile}, {"san", sel.SAN}, {"spki", sel.SPKISHA256}, {"serial", sel.Serial}} {
		if kv[1] != "" {
			parts = append(parts, kv[0]+"="+kv[1])
		}
	}
	return strings.Join(parts, ",")
}
