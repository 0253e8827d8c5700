package api

import (
	"bytes"
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/ca"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/issue"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/profile"
	"github.com/certwright/certwright/internal/web/apitypes"
)

func (h *Handler) whoami(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	v := apitypes.Whoami{ID: p.ID, Name: p.Name, Kind: string(p.Kind), Auth: p.Auth, ExpiresAt: p.AuthExpiresAt, Via: p.Via,
		Bindings: make([]apitypes.Binding, 0, len(p.Bindings)), Permissions: []string{}}
	perms := map[string]bool{}
	for i := range p.Bindings {
		v.Bindings = append(v.Bindings, bindingView(&p.Bindings[i]))
		for _, perm := range p.Bindings[i].Role.Permissions {
			if !perms[string(perm)] {
				perms[string(perm)] = true
				v.Permissions = append(v.Permissions, string(perm))
			}
		}
	}
	slices.Sort(v.Permissions)
	if id, ok := strings.CutPrefix(p.Auth, "token:"); ok {
		v.AuthMethod, v.TokenID = "token", id
	} else if serial, ok := strings.CutPrefix(p.Auth, "mtls:"); ok {
		v.AuthMethod, v.CertificateSerial = "client_certificate", serial
	}
	return writeJSON(w, http.StatusOK, v)
}

// ---- CAs

func (h *Handler) caView(r *http.Request, c *ca.CA, withPEM bool) apitypes.CA {
	v := apitypes.CA{
		ID: c.ID, Name: c.Name, Kind: string(c.Kind), External: c.External, Status: string(c.Status),
		ParentID: c.ParentID, KeyAlgorithm: string(c.Key.Algorithm), KeyProvider: c.Key.Provider, CreatedAt: c.CreatedAt,
		DeletedAt: c.DeletedAt, RestorableUntil: c.RestorableUntil,
	}
	if c.ParentID != "" {
		if p, err := h.d.CAs.Get(r.Context(), c.ParentID); err == nil {
			v.Parent = p.Name
		}
	}
	if n, err := h.d.Inventory.CountCertificates(r.Context(), c.ID); err == nil {
		v.CertificatesIssued = n
	}
	if len(c.CertDER) > 0 {
		if cert, err := x509.ParseCertificate(c.CertDER); err == nil {
			nb, na := cert.NotBefore.UTC(), cert.NotAfter.UTC()
			v.Subject, v.NotBefore, v.NotAfter = cert.Subject.String(), &nb, &na
			pl := cert.MaxPathLen
			if !cert.MaxPathLenZero && pl == 0 {
				pl = -1
			}
			v.PathLen = &pl
			v.Fingerprint = pki.Fingerprint(c.CertDER)
			if withPEM {
				v.CertificatePEM = string(pki.CertPEM(c.CertDER))
			}
		}
	}
	if c.Status == ca.StatusPending && len(c.CSRDER) > 0 {
		v.CSRPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: c.CSRDER}))
	}
	v.Offline = c.Offline()
	if len(c.CertDER) > 0 {
		u := h.caURLs(c.ID)
		v.CRLURL, v.CertificateURL = u.CRL, u.CAIssuers
	}
	return v
}

// caURLs are the public URLs of CA id's CRL and certificate, none when
// the public URL is not configured.
func (h *Handler) caURLs(id string) ca.URLs {
	if h.d.PublicHTTPURL == "" {
		return ca.URLs{}
	}
	return ca.URLsFor(h.d.PublicHTTPURL, id)
}

func (h *Handler) listCAs(w http.ResponseWriter, r *http.Request, _ authz.Principal) error {
	cas, err := h.d.CAs.List(r.Context())
	if err != nil {
		return err
	}
	out := apitypes.CAList{CAs: make([]apitypes.CA, 0, len(cas))}
	for _, c := range cas {
		out.CAs = append(out.CAs, h.caView(r, c, false))
	}
	return writeJSON(w, http.StatusOK, out)
}

func (h *Handler) showCA(w http.ResponseWriter, r *http.Request, _ authz.Principal) error {
	c, err := h.d.CAs.Get(r.Context(), r.PathValue("ca"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, h.caView(r, c, true))
}

func parseCIDRs(field string, in []string) ([]*net.IPNet, error) {
	var out []*net.IPNet
	for _, s := range in {
		_, n, err := net.ParseCIDR(strings.TrimSpace(s))
		if err != nil {
			return nil, badInput("%s: %q is not a CIDR range", field, s)
		}
		out = append(out, n)
	}
	return out, nil
}

func (h *Handler) createCA(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	var req apitypes.CreateCARequest
	if err := h.decode(r, &req); err != nil {
		return err
	}
	spec := &ca.Spec{
		Name:           strings.TrimSpace(req.Name),
		Subject:        pkix.Name{CommonName: req.CommonName},
		KeyProvider:    req.KeyProvider,
		PermittedDNS:   req.Constraints.PermittedDNS,
		ExcludedDNS:    req.Constraints.ExcludedDNS,
		PermittedEmail: req.Constraints.PermittedEmail,
		PermittedURI:   req.Constraints.PermittedURI,
	}
	if req.Organization != "" {
		spec.Subject.Organization = []string{req.Organization}
	}
	if req.Country != "" {
		spec.Subject.Country = []string{req.Country}
	}
	var err error
	if spec.PermittedIP, err = parseCIDRs("name_constraints.permitted_ip", req.Constraints.PermittedIP); err != nil {
		return err
	}
	if spec.ExcludedIP, err = parseCIDRs("name_constraints.excluded_ip", req.Constraints.ExcludedIP); err != nil {
		return err
	}
	defAlg, defDays, defPath := ca.DefaultIntermediateKey, ca.DefaultIntermediateDays, ca.DefaultIntermediatePathLen
	if req.Type == "root" {
		defAlg, defDays, defPath = ca.DefaultRootKey, ca.DefaultRootDays, ca.DefaultRootPathLen
	}
	spec.KeyAlg = defAlg
	if req.KeyAlgorithm != "" {
		if spec.KeyAlg, err = pki.ParseKeyAlgorithm(req.KeyAlgorithm); err != nil {
			return badInput("key_algorithm: %v", err)
		}
	}
	days := defDays
	if req.ValidityDays != 0 {
		days = req.ValidityDays
	}
	spec.Validity = time.Duration(days) * 24 * time.Hour
	spec.MaxPathLen = defPath
	if req.PathLen != nil {
		spec.MaxPathLen = *req.PathLen
	}
	var c *ca.CA
	switch req.Type {
	case "root":
		if req.Parent != "" {
			return badInput("a root has no parent; use type intermediate")
		}
		c, err = h.d.Issuer.CreateRoot(r.Context(), p, spec)
	case "intermediate":
		if req.Parent == "" {
			return badInput("parent: an intermediate needs the parent CA (or use type external for a CA signed elsewhere)")
		}
		c, err = h.d.Issuer.CreateIntermediate(r.Context(), p, req.Parent, spec)
	case "external":
		c, err = h.d.Issuer.CreateExternal(r.Context(), p, spec)
	default:
		return badInput("type %q: want root, intermediate or external", req.Type)
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, h.caView(r, c, true))
}

func (h *Handler) caChain(w http.ResponseWriter, r *http.Request, _ authz.Principal) error {
	chain, err := h.d.Issuer.Chain(r.Context(), r.PathValue("ca"))
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	for _, c := range chain {
		buf.Write(pki.CertPEM(c.Raw))
	}
	return writePEM(w, buf.Bytes())
}

func (h *Handler) caCSR(w http.ResponseWriter, r *http.Request, _ authz.Principal) error {
	c, err := h.d.CAs.Get(r.Context(), r.PathValue("ca"))
	if err != nil {
		return err
	}
	if len(c.CSRDER) == 0 {
		return fmt.Errorf("%w: CA %s was not created as an external CA and has no CSR", errNotFound, c.Name)
	}
	return writePEM(w, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: c.CSRDER}))
}

func (h *Handler) importCA(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	var req apitypes.ImportCARequest
	if err := h.decode(r, &req); err != nil {
		return err
	}
	cert, chain, err := importedCertificates(req)
	if err != nil {
		return err
	}
	c, err := h.d.Issuer.ImportCertificate(r.Context(), p, r.PathValue("ca"), cert, chain)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, h.caView(r, c, true))
}

// importRoot records an offline root from its certificate:
// {"name": ..., "certificate_pem": ...}.
func (h *Handler) importRoot(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	var req apitypes.ImportRootRequest
	if err := h.decode(r, &req); err != nil {
		return err
	}
	if strings.TrimSpace(req.Name) == "" {
		return badInput("name is required")
	}
	certs, err := pki.ParseCertificates([]byte(req.CertificatePEM))
	if err != nil {
		return badInput("certificate_pem: %v", err)
	}
	if len(certs) != 1 {
		return badInput("certificate_pem: want exactly the root certificate, got %d certificates", len(certs))
	}
	c, err := h.d.Issuer.ImportRoot(r.Context(), p, strings.TrimSpace(req.Name), certs[0])
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, h.caView(r, c, true))
}

// importedCertificates reads an externally signed CA certificate and its
// issuer chain from an import request (fuzzed by FuzzImportCA).
func importedCertificates(req apitypes.ImportCARequest) (*x509.Certificate, []*x509.Certificate, error) {
	certs, err := pki.ParseCertificates([]byte(req.CertificatePEM))
	if err != nil {
		return nil, nil, badInput("certificate_pem: %v", err)
	}
	if len(certs) == 0 {
		return nil, nil, badInput("certificate_pem holds no certificate")
	}
	chain := certs[1:]
	if strings.TrimSpace(req.ChainPEM) != "" {
		more, err := pki.ParseCertificates([]byte(req.ChainPEM))
		if err != nil {
			return nil, nil, badInput("chain_pem: %v", err)
		}
		chain = append(chain, more...)
	}
	return certs[0], chain, nil
}

func (h *Handler) caState(f func(CAs, context.Context, authz.Principal, string) (*ca.CA, error)) func(http.ResponseWriter, *http.Request, authz.Principal) error {
	return func(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
		c, err := f(h.d.CAs, r.Context(), p, r.PathValue("ca"))
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, h.caView(r, c, false))
	}
}

// ---- certificates

func (h *Handler) certView(r *http.Request, c *inventory.Certificate, caNames map[string]string) apitypes.Certificate {
	name, ok := caNames[c.CAID]
	if !ok {
		if a, err := h.d.CAs.Get(r.Context(), c.CAID); err == nil {
			name = a.Name
		}
		caNames[c.CAID] = name
	}
	return apitypes.Certificate{
		Serial: c.Serial, CAID: c.CAID, CA: name, Profile: c.Profile, Requester: c.Requester,
		Subject: c.Subject, SANs: c.SANs, NotBefore: c.NotBefore, NotAfter: c.NotAfter,
		KeyAlgorithm: c.KeyAlgorithm, KeyBits: c.KeyBits, SignatureAlgorithm: c.SignatureAlgorithm,
		Status: string(c.Status), Fingerprint: c.Fingerprint, Tags: c.Tags, LintWarnings: c.LintWarnings,
		CreatedAt: c.CreatedAt, SPKISHA256: c.SPKISHA256, Revocation: revocation(c.Revocation),
		Source: string(c.Source), Owner: c.Owner, Issuer: c.Issuer, IssuerSerial: c.IssuerSerial,
		AutoRenew: c.AutoRenew, Replaces: c.Replaces, RenewedBy: c.RenewedBy, RenewalKind: string(c.RenewalKind),
		RenewError: c.RenewError,
	}
}

func revocation(r *inventory.Revocation) *apitypes.Revocation {
	if r == nil {
		return nil
	}
	return revocationView(r, true)
}

func (h *Handler) issued(r *http.Request, res *issue.Result) (apitypes.IssuedCertificate, error) {
	out := apitypes.IssuedCertificate{Certificate: h.certView(r, res.Cert, map[string]string{res.Cert.CAID: res.CAName})}
	out.CertificatePEM = string(pki.CertPEM(res.Leaf.Raw))
	intermediates, root := issue.SplitChain(res.Chain)
	var chain []byte
	for _, c := range intermediates {
		chain = append(chain, pki.CertPEM(c.Raw)...)
	}
	out.ChainPEM = string(chain)
	if root != nil {
		out.RootPEM = string(pki.CertPEM(root.Raw))
	}
	return out, nil
}

func (h *Handler) defaultCA(name string) string {
	if name == "" {
		return h.d.DefaultCA
	}
	return name
}

func (h *Handler) sign(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	var req apitypes.SignRequest
	if err := h.decode(r, &req); err != nil {
		return err
	}
	if strings.TrimSpace(req.CSRPEM) == "" {
		return badInput("csr_pem is required")
	}
	if req.Profile == "" {
		return badInput("profile is required")
	}
	csr, err := pki.ParseCSR([]byte(req.CSRPEM))
	if err != nil {
		return badInput("csr_pem: %v", err)
	}
	kind, err := renewalKind(req.Replaces, req.RenewalKind)
	if err != nil {
		return err
	}
	res, err := h.d.Issuer.Issue(r.Context(), issue.Request{
		Principal: p, CA: h.defaultCA(req.CA), Profile: req.Profile, CSR: csr,
		ValidityDays: req.ValidityDays, Tags: req.Tags, Owner: req.Owner, AutoRenew: req.AutoRenew,
		Replaces: req.Replaces, RenewalKind: kind,
	})
	if err != nil {
		return err
	}
	if res.Pending != nil {
		w.Header().Set("Location", "/api/v1/requests/"+res.Pending.ID)
		return writeJSON(w, http.StatusAccepted, requestView(res.Pending, ""))
	}
	out, err := h.issued(r, res)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, out)
}

// renewalKind reads a sign request's renewal_kind: only agent and manual
// come from outside; the server's own renewals set the others.
func renewalKind(replaces, kind string) (inventory.RenewalKind, error) {
	switch {
	case kind == "":
		return "", nil
	case replaces == "":
		return "", badInput("renewal_kind needs replaces: the serial of the certificate being renewed")
	case kind == string(inventory.RenewalAgent) || kind == string(inventory.RenewalManual):
		return inventory.RenewalKind(kind), nil
	}
	return "", badInput("renewal_kind %q: want agent or manual", kind)
}

func (h *Handler) issueManaged(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	var req apitypes.IssueRequest
	if err := h.decode(r, &req); err != nil {
		return err
	}
	if req.Profile == "" {
		return badInput("profile is required")
	}
	format := req.KeyFormat
	if format == "" {
		format = "pkcs8"
	}
	if format != "pkcs8" && format != "pkcs12" {
		return badInput("key_format %q: want pkcs8 or pkcs12", req.KeyFormat)
	}
	if format == "pkcs12" && len(req.Password) < 8 {
		return badInput("password: PKCS#12 output needs a password of at least 8 characters")
	}
	ireq := issue.Request{
		Principal: p, CA: h.defaultCA(req.CA), Profile: req.Profile,
		Subject: pkix.Name{CommonName: req.CommonName}, DNSNames: req.DNSNames,
		EmailAddresses: req.Emails, ValidityDays: req.ValidityDays, Tags: req.Tags,
		Owner: req.Owner, AutoRenew: req.AutoRenew,
	}
	if req.KeyAlgorithm != "" {
		alg, err := pki.ParseKeyAlgorithm(req.KeyAlgorithm)
		if err != nil {
			return badInput("key_algorithm: %v", err)
		}
		ireq.KeyAlgorithm = alg
	}
	for _, s := range req.IPAddresses {
		ip := net.ParseIP(strings.TrimSpace(s))
		if ip == nil {
			return badInput("ip_addresses: %q is not an IP address", s)
		}
		ireq.IPAddresses = append(ireq.IPAddresses, ip)
	}
	for _, s := range req.URIs {
		u, err := url.Parse(s)
		if err != nil || u.Scheme == "" {
			return badInput("uris: %q is not an absolute URI", s)
		}
		ireq.URIs = append(ireq.URIs, u)
	}
	res, err := h.d.Issuer.Issue(r.Context(), ireq)
	if err != nil {
		return err
	}
	out, err := h.issued(r, res)
	if err != nil {
		return err
	}
	if err := encodeKey(&out, res, format, req.Password); err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, http.StatusCreated, out)
}

func (h *Handler) listCerts(w http.ResponseWriter, r *http.Request, who authz.Principal) error {
	q := r.URL.Query()
	f := inventory.Filter{Profile: q.Get("profile"), SAN: q.Get("san"), Tag: q.Get("tag"), After: q.Get("after"), SPKISHA256: q.Get("spki_sha256")}
	if f.SPKISHA256 != "" && !isHex(f.SPKISHA256, 64) {
		return badInput("spki_sha256 %q: want 64 hex digits", f.SPKISHA256)
	}
	if s := q.Get("status"); s != "" {
		if err := f.SetStatus(s, h.d.Clock.Now()); err != nil {
			return badInput("status %q: want valid, revoked or expired", s)
		}
	}
	if s := q.Get("source"); s != "" {
		src, err := inventory.ParseSource(s)
		if err != nil {
			return badInput("source %q: want issued, acme, imported or discovered", s)
		}
		f.Source = src
	}
	if s := q.Get("sort"); s != "" {
		o, err := inventory.ParseOrder(s)
		if err != nil {
			return badInput("sort %q: want %s", s, strings.Join(inventory.OrderNames(), ", "))
		}
		f.Order = o
	}
	if s := q.Get("current"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return badInput("current %q: want true or false", s)
		}
		f.Current = b
	}
	if c := q.Get("ca"); c != "" {
		a, err := h.d.CAs.Get(r.Context(), c)
		if err != nil {
			return err
		}
		f.CAID = a.ID
	}
	if e := q.Get("expiring_within"); e != "" {
		d, err := inventory.ParseWindow(e)
		if err != nil {
			return badInput("expiring_within: %v", err)
		}
		f.ExpiringBefore = h.d.Clock.Now().Add(d)
	}
	f.Limit = 500
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			return badInput("limit %q: want 1 to 1000", l)
		}
		f.Limit = n
	}
	filters := listFilters(f, q.Get("status"), q.Get("expiring_within"))
	switch after := f.After; {
	case strings.HasPrefix(after, cursorPrefix):
		pos, err := h.cursors.open(who.ID, filters, after)
		if err == nil {
			err = f.SetPosition(pos)
		}
		if err != nil {
			return badInput("after: this continuation cursor is not valid here (it works only for who received it, with the same filters, on a server sharing this one's key-encryption key): continue after the last certificate you were shown")
		}
	case after != "":
		if err := f.SetPosition(after); err != nil {
			return badInput("after: %v", err)
		}
	}
	// A viewer bound to a scope sees only what its scope covers, and the
	// cursor names only a certificate it was shown: the store is read in
	// pages until this one is full or the inventory ends, at most
	// h.scan.Max rows per request (inventory.ScanVisible). When that bound ends the
	// scan first, next is an opaque, sealed position instead: the row
	// reached may be outside the caller's scope.
	out := apitypes.CertificateList{Certificates: make([]apitypes.Certificate, 0, f.Limit)}
	names := map[string]string{}
	var last *inventory.Certificate
	resume, err := inventory.ScanVisible(r.Context(), h.d.Inventory.ListCertificates, f, h.scan, func(c *inventory.Certificate) bool {
		v := h.certView(r, c, names)
		if who.Allow(authz.PermCertRead, c.Resource(v.CA)) != nil {
			return false
		}
		out.Certificates = append(out.Certificates, v)
		last = c
		return true
	})
	if err != nil {
		return err
	}
	switch {
	case resume != nil:
		out.Next = h.cursors.seal(who.ID, filters, inventory.Position(f.Order, resume))
	case len(out.Certificates) == f.Limit:
		out.Next = inventory.Position(f.Order, last)
	}
	return writeJSON(w, http.StatusOK, out)
}

// getCert returns the certificate in the path, if who may read it.
func (h *Handler) getCert(r *http.Request, who authz.Principal) (*inventory.Certificate, error) {
	s, err := pki.NormalizeSerial(r.PathValue("serial"))
	if err != nil {
		return nil, badInput("%v", err)
	}
	c, err := h.d.Inventory.GetCertificate(r.Context(), s)
	if err != nil {
		return nil, err
	}
	name := ""
	if a, err := h.d.CAs.Get(r.Context(), c.CAID); err == nil {
		name = a.Name
	}
	if err := who.Allow(authz.PermCertRead, c.Resource(name)); err != nil {
		return nil, err
	}
	return c, nil
}

func (h *Handler) showCert(w http.ResponseWriter, r *http.Request, who authz.Principal) error {
	c, err := h.getCert(r, who)
	if err != nil {
		return err
	}
	v := h.certView(r, c, map[string]string{})
	v.CertificatePEM = string(pki.CertPEM(c.DER))
	if c.SPKISHA256 != "" {
		k, err := h.d.Inventory.CompromisedKey(r.Context(), c.SPKISHA256)
		if err != nil {
			return err
		}
		if k != nil {
			v.KeyCompromised = &apitypes.KeyCompromise{ReportedAt: k.ReportedAt, Source: k.Source, Ref: k.Ref, ReportedBy: k.ReportedBy}
		}
	}
	return writeJSON(w, http.StatusOK, v)
}

func (h *Handler) certPEM(w http.ResponseWriter, r *http.Request, who authz.Principal) error {
	c, err := h.getCert(r, who)
	if err != nil {
		return err
	}
	out := pki.CertPEM(c.DER)
	if v := r.URL.Query().Get("chain"); v == "true" || v == "1" {
		chain, err := h.d.Issuer.Chain(r.Context(), c.CAID)
		if err != nil {
			return err
		}
		intermediates, _ := issue.SplitChain(chain)
		for _, cc := range intermediates {
			out = append(out, pki.CertPEM(cc.Raw)...)
		}
	}
	return writePEM(w, out)
}

// ---- profiles

func (h *Handler) listProfiles(w http.ResponseWriter, r *http.Request, _ authz.Principal) error {
	ps, err := h.d.Profiles.List(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"profiles": ps})
}

func (h *Handler) showProfile(w http.ResponseWriter, r *http.Request, _ authz.Principal) error {
	p, err := h.d.Profiles.Get(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, p)
}

func readProfile(r *http.Request) (*profile.Profile, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, badInput("the request body must hold a profile definition (YAML or JSON)")
	}
	return profile.Parse(body)
}

func (h *Handler) createProfile(w http.ResponseWriter, r *http.Request, who authz.Principal) error {
	p, err := readProfile(r)
	if err != nil {
		return err
	}
	if err := h.d.Profiles.Create(r.Context(), who, p); err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, p)
}

func (h *Handler) updateProfile(w http.ResponseWriter, r *http.Request, who authz.Principal) error {
	p, err := readProfile(r)
	if err != nil {
		return err
	}
	if name := r.PathValue("name"); p.Name != name {
		return badInput("the definition names profile %q but the URL names %q", p.Name, name)
	}
	if err := h.d.Profiles.Update(r.Context(), who, p); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, p)
}

func (h *Handler) deleteProfile(w http.ResponseWriter, r *http.Request, who authz.Principal) error {
	if err := h.d.Profiles.Delete(r.Context(), who, r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
