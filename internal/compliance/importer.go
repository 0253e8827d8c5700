package compliance

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/ca"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/pki"
)

// ImportStore is the storage an Importer needs.
type ImportStore interface {
	// ImportCertificates inserts certs, each with the event of the same
	// index, in one transaction, and reports which were inserted: a serial
	// already present is skipped without its event.
	ImportCertificates(ctx context.Context, certs []*inventory.Certificate, evs []audit.Event) ([]bool, error)
	ListCertificates(ctx context.Context, f inventory.Filter) ([]*inventory.Certificate, error)
	ListCAs(ctx context.Context) ([]*ca.CA, error)
}

// Importer adds certificates issued elsewhere to the inventory, so that
// their expiry is monitored and they appear in the compliance report.
// Their keys never enter Certwright.
type Importer struct {
	store ImportStore
	clock clock.Clock
	log   *slog.Logger
}

// NewImporter returns an Importer; every argument is required.
func NewImporter(st ImportStore, clk clock.Clock, log *slog.Logger) (*Importer, error) {
	if st == nil || clk == nil || log == nil {
		return nil, errors.New("compliance: importer: store, clock and logger are required")
	}
	return &Importer{store: st, clock: clk, log: log}, nil
}

// ImportFile is one file of an import: its name (for messages) and bytes.
type ImportFile struct {
	Name string
	Data []byte
}

// ImportRequest imports the certificates of Files for Principal, who needs
// cert:issue over each certificate's names.
type ImportRequest struct {
	Principal authz.Principal
	Files     []ImportFile
	Tags      []string
	Owner     string
}

// Skipped is a certificate of the import that was not stored, and why.
type Skipped struct {
	Fingerprint string
	Subject     string
	Reason      string
}

// ImportResult lists what an import stored and what it skipped.
type ImportResult struct {
	Imported []*inventory.Certificate
	Skipped  []Skipped
}

// Reasons a certificate is skipped.
const (
	ReasonInInventory = "already in the inventory"
	ReasonDuplicate   = "listed more than once in this import"
)

// Limits of the free-text fields.
const (
	maxOwner  = 200
	maxTags   = 32
	maxTagLen = 64
)

func validateOwner(s string) (string, error) {
	s = strings.TrimSpace(s)
	if len(s) > maxOwner || strings.ContainsFunc(s, unicode.IsControl) {
		return "", fmt.Errorf("%w: owner: use at most %d characters without control characters", ErrInvalid, maxOwner)
	}
	return s, nil
}

func validateTags(tags []string) ([]string, error) {
	if len(tags) > maxTags {
		return nil, fmt.Errorf("%w: %d tags, at most %d", ErrInvalid, len(tags), maxTags)
	}
	out := make([]string, 0, len(tags))
	for _, t := range tags {
		t = strings.TrimSpace(t)
		if t == "" || len(t) > maxTagLen || strings.ContainsAny(t, ",") || strings.ContainsFunc(t, unicode.IsControl) {
			return nil, fmt.Errorf("%w: tag %q: use 1-%d characters without commas or control characters", ErrInvalid, t, maxTagLen)
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out, nil
}

// candidate is one certificate to become an inventory record.
type candidate struct {
	file  string
	leaf  *x509.Certificate
	chain []*x509.Certificate // nearest issuer first
}

// ValidateImport runs every check Import makes on the files themselves —
// sizes, counts, private keys, block types, parsing — without storing
// anything. The command line calls it before sending, so that a private
// key never leaves the host.
func ValidateImport(files []ImportFile) error {
	_, err := parseImport(files)
	return err
}

// parseImport parses every file and returns the certificates to record:
// in each bundle, a certificate that issued another certificate of the
// same bundle belongs to that one's chain; every other certificate
// (a leaf, or a CA certificate on its own) is a record. Any problem with
// any file refuses the whole import.
func parseImport(files []ImportFile) ([]candidate, error) {
	if len(files) == 0 {
		return nil, fmt.Errorf("%w: no files: give at least one PEM or DER certificate file", ErrInvalid)
	}
	if len(files) > MaxImportFiles {
		return nil, fmt.Errorf("%w: %d files, at most %d in one import", ErrInvalid, len(files), MaxImportFiles)
	}
	var out []candidate
	total := 0
	for _, f := range files {
		name := fileName(f.Name)
		certs, err := ParseBundle(name, f.Data)
		if err != nil {
			return nil, err
		}
		if total += len(certs); total > MaxImportCertificates {
			return nil, fmt.Errorf("%w: the import holds more than %d certificates; split it", ErrInvalid, MaxImportCertificates)
		}
		out = append(out, bundleRecords(name, certs)...)
	}
	return out, nil
}

// maxFileName bounds a file name as messages and audit events carry it.
const maxFileName = 200

// fileName is a caller's file name made safe to print and to audit: no
// control characters, bounded length.
func fileName(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '?'
		}
		return r
	}, strings.TrimSpace(s))
	if s == "" {
		return "input"
	}
	if len(s) > maxFileName {
		return strings.ToValidUTF8(s[:maxFileName], "") + "..."
	}
	return s
}

// bundleRecords splits one bundle into records and their chains.
func bundleRecords(file string, certs []*x509.Certificate) []candidate {
	var uniq []*x509.Certificate
	for _, c := range certs {
		if !containsCert(uniq, c) {
			uniq = append(uniq, c)
		}
	}
	var out []candidate
	for _, c := range uniq {
		isIssuer := slices.ContainsFunc(uniq, func(o *x509.Certificate) bool {
			return o != c && issued(c, o)
		})
		if isIssuer {
			continue
		}
		chain := buildChain(c, uniq)[1:]
		out = append(out, candidate{file: file, leaf: c, chain: chain})
	}
	return out
}

// InventorySerial is the inventory key of an imported certificate
// (inventory.ExternalSerial).
func InventorySerial(der []byte) string { return inventory.ExternalSerial(der) }

// certNames are the names a scope check looks at: the SANs and the
// subject common name.
func certNames(c *x509.Certificate) []string {
	names := pki.SANs(c)
	if cn := c.Subject.CommonName; cn != "" && !slices.ContainsFunc(names, func(n string) bool { return strings.EqualFold(n, cn) }) {
		names = append(names, cn)
	}
	return names
}

// ourCA is one of this instance's CAs with its parsed certificate.
type ourCA struct {
	rec  *ca.CA
	cert *x509.Certificate
}

func loadCAs(ctx context.Context, list func(context.Context) ([]*ca.CA, error)) ([]ourCA, error) {
	cas, err := list(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]ourCA, 0, len(cas))
	for _, c := range cas {
		if len(c.CertDER) == 0 {
			continue
		}
		cert, err := x509.ParseCertificate(c.CertDER)
		if err != nil {
			continue
		}
		out = append(out, ourCA{rec: c, cert: cert})
	}
	return out, nil
}

// issuingCA returns our CA whose key signed c, if any.
func issuingCA(c *x509.Certificate, cas []ourCA) *ourCA {
	for i := range cas {
		if err := c.CheckSignatureFrom(cas[i].cert); err == nil {
			return &cas[i]
		}
	}
	return nil
}

// Import validates every file, then stores every new certificate with a
// certificate.import audit event, all in one transaction. Nothing is
// stored when any file is refused (ErrInvalid) or the principal may not
// import one of the certificates (authz.ErrForbidden). A certificate
// already in the inventory is skipped, not an error.
func (im *Importer) Import(ctx context.Context, req ImportRequest) (*ImportResult, error) {
	owner, err := validateOwner(req.Owner)
	if err != nil {
		return nil, err
	}
	tags, err := validateTags(req.Tags)
	if err != nil {
		return nil, err
	}
	cands, err := parseImport(req.Files)
	if err != nil {
		return nil, err
	}
	cas, err := loadCAs(ctx, im.store.ListCAs)
	if err != nil {
		return nil, fmt.Errorf("compliance: import: list CAs: %w", err)
	}
	now := im.clock.Now().UTC()
	res := &ImportResult{Imported: []*inventory.Certificate{}, Skipped: []Skipped{}}
	var recs []*inventory.Certificate
	var evs []audit.Event
	seen := map[string]bool{}
	for _, cd := range cands {
		c := cd.leaf
		fp := pki.Fingerprint(c.Raw)
		skip := func(reason string) {
			res.Skipped = append(res.Skipped, Skipped{Fingerprint: fp, Subject: c.Subject.String(), Reason: reason})
		}
		if seen[fp] {
			skip(ReasonDuplicate)
			continue
		}
		seen[fp] = true
		if own := slices.IndexFunc(cas, func(o ourCA) bool { return pki.Fingerprint(o.cert.Raw) == fp }); own >= 0 {
			skip(fmt.Sprintf("is the certificate of CA %s, managed here", cas[own].rec.Name))
			continue
		}
		caID, caName := "", ""
		if o := issuingCA(c, cas); o != nil {
			caID, caName = o.rec.ID, o.rec.Name
		}
		if err := req.Principal.Allow(authz.PermCertIssue, authz.Resource{CAID: caID, CAName: caName, Names: certNames(c)}); err != nil {
			return nil, fmt.Errorf("compliance: import %s (%s): %w", cd.file, c.Subject, err)
		}
		dup, err := im.inInventory(ctx, c, fp)
		if err != nil {
			return nil, err
		}
		if dup {
			skip(ReasonInInventory)
			continue
		}
		rec := importRecord(cd, caID, req.Principal.Name, owner, tags, now)
		rec.RequesterID = req.Principal.ID
		recs = append(recs, rec)
		evs = append(evs, audit.New(req.Principal, now, "certificate.import", rec.Serial, map[string]any{
			"file": cd.file, "subject": rec.Subject, "issuer": rec.Issuer, "issuer_serial": rec.IssuerSerial,
			"sha256_fingerprint": fp, "not_after": rec.NotAfter, "sans": rec.SANs, "ca_id": caID,
			"chain_length": len(rec.Chain), "owner": owner, "tags": tags,
		}))
	}
	if len(recs) > 0 {
		inserted, err := im.store.ImportCertificates(ctx, recs, evs)
		if err != nil {
			return nil, fmt.Errorf("compliance: import: %w", err)
		}
		for i, rec := range recs {
			if i < len(inserted) && inserted[i] {
				res.Imported = append(res.Imported, rec)
				continue
			}
			res.Skipped = append(res.Skipped, Skipped{Fingerprint: rec.Fingerprint, Subject: rec.Subject, Reason: ReasonInInventory})
		}
	}
	im.log.Info("certificates imported", "principal", req.Principal.Name, "files", len(req.Files),
		"imported", len(res.Imported), "skipped", len(res.Skipped))
	return res, nil
}

// inInventory reports whether the inventory holds c already, imported or
// issued here (under its own serial), found through its key.
func (im *Importer) inInventory(ctx context.Context, c *x509.Certificate, fp string) (bool, error) {
	same, err := im.store.ListCertificates(ctx, inventory.Filter{SPKISHA256: pki.Fingerprint(c.RawSubjectPublicKeyInfo), Limit: 10000})
	if err != nil {
		return false, fmt.Errorf("compliance: import: look up %s: %w", fp, err)
	}
	return slices.ContainsFunc(same, func(x *inventory.Certificate) bool { return strings.EqualFold(x.Fingerprint, fp) }), nil
}

// importRecord builds the inventory record of an imported certificate.
func importRecord(cd candidate, caID, requester, owner string, tags []string, now time.Time) *inventory.Certificate {
	chain := make([][]byte, 0, len(cd.chain))
	for _, p := range cd.chain {
		chain = append(chain, p.Raw)
	}
	rec := inventory.External(cd.leaf, chain, inventory.SourceImported, caID, now)
	rec.Requester, rec.Owner, rec.Tags = requester, owner, slices.Clone(tags)
	return rec
}
