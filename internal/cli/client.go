package cli

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"

	"github.com/certwright/certwright/internal/web/apitypes"
)

// maxResponse bounds every answer the client reads from the server.
const maxResponse = 32 << 20

// client is a typed client of the /api/v1 REST API.
type client struct {
	base  string // server URL without a trailing slash
	token string // empty: authenticate with the client certificate only
	// certFile is the client certificate in use, named in the 401 hint.
	certFile string
	http     *http.Client
}

func newClient(ep *endpoint) *client {
	return &client{
		base:     strings.TrimRight(ep.server.String(), "/"),
		token:    ep.token,
		certFile: ep.certFile,
		http:     httpClient(ep.roots, ep.clientCert),
	}
}

// close releases idle connections, so that in-process use leaks nothing.
func (c *client) close() { c.http.CloseIdleConnections() }

// apiError is an error answer of the API.
type apiError struct {
	status int
	body   apitypes.Error
}

func (e *apiError) Error() string {
	body := e.body
	if body.Error == "" {
		body.Error = strings.ToLower(http.StatusText(e.status))
		if body.Error == "" {
			body.Error = "HTTP status " + strconv.Itoa(e.status)
		}
	}
	msg := body.Message()
	if e.body.Rule != "" {
		msg += " (rule: " + e.body.Rule + ")"
	}
	return msg
}

// seg escapes one path segment (a CA or profile name, a serial).
func seg(s string) string { return url.PathEscape(s) }

// request sends one API request. A JSON answer is decoded into out when out
// is not nil; the raw body is returned either way.
func (c *client) request(ctx context.Context, method, path string, query url.Values, body []byte, contentType string, out any) ([]byte, error) {
	_, data, err := c.requestStatus(ctx, method, path, query, body, contentType, out)
	return data, err
}

// newRequest builds a request with the credentials. The token goes in the
// Authorization header only, never in the URL.
func (c *client) newRequest(ctx context.Context, method, path string, query url.Values, body []byte, contentType string) (*http.Request, error) {
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("build request %s %s: %w", method, path, err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("User-Agent", "certwright/"+version)
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	return req, nil
}

// requestStatus is request that also returns the 2xx status, for the
// routes whose answer depends on it (201 issued, 202 held for approval).
func (c *client) requestStatus(ctx context.Context, method, path string, query url.Values, body []byte, contentType string, out any) (int, []byte, error) {
	req, err := c.newRequest(ctx, method, path, query, body, contentType)
	if err != nil {
		return 0, nil, err
	}
	if out != nil || contentType == "application/json" {
		req.Header.Set("Accept", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, c.transportError(ctx, err)
	}
	defer resp.Body.Close()
	data, err := readAllLimited(resp.Body, "the server's answer", maxResponse)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return 0, nil, c.errorFromResponse(resp.StatusCode, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return 0, nil, fmt.Errorf("%s %s: the server's answer is not the expected JSON: %w", method, path, err)
		}
	}
	return resp.StatusCode, data, nil
}

// stream copies a 2xx answer to w as it arrives, without the size limit
// and overall timeout of request: an audit export can be large. The
// context still bounds it.
func (c *client) stream(ctx context.Context, path string, query url.Values, accept string, w io.Writer) error {
	req, err := c.newRequest(ctx, http.MethodGet, path, query, nil, "")
	if err != nil {
		return err
	}
	req.Header.Set("Accept", accept)
	hc := *c.http
	hc.Timeout = 0
	resp, err := hc.Do(req)
	if err != nil {
		return c.transportError(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		data, err := readAllLimited(resp.Body, "the server's answer", maxResponse)
		if err != nil {
			return fmt.Errorf("GET %s: %w", path, err)
		}
		return c.errorFromResponse(resp.StatusCode, data)
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("GET %s: %w", path, ctx.Err())
		}
		return fmt.Errorf("GET %s: %w", path, err)
	}
	return nil
}

func (c *client) errorFromResponse(status int, data []byte) error {
	e := &apiError{status: status}
	if json.Unmarshal(data, &e.body) != nil {
		e.body = apitypes.Error{}
	}
	switch status {
	case http.StatusUnauthorized:
		// The status goes in the hint, where a script can match it; the
		// first line stays the server's words.
		switch {
		case e.body.Rule == apitypes.RuleTokenExpired:
			return &hintError{e, "HTTP 401: the token has expired; get a new one from an administrator (certwright token create PRINCIPAL --expires 90d) and use it with --token-file or $CERTWRIGHT_TOKEN_FILE"}
		case c.certFile != "" && c.token != "":
			return &hintError{e, "HTTP 401: the server accepted neither the token nor the client certificate " + c.certFile +
				"; check --token-file/$CERTWRIGHT_TOKEN(_FILE), and that the certificate is issued by one of the server's CAs and its SAN URI, DNS name or e-mail address is registered (certwright principal identity add)"}
		case c.certFile != "":
			return &hintError{e, "HTTP 401: the server did not accept the client certificate " + c.certFile +
				": it must be issued by one of the server's CAs, unexpired and unrevoked, and its SAN URI or DNS name registered to an enabled principal (certwright principal identity add NAME --uri URI)"}
		}
		return &hintError{e, "HTTP 401: the server did not accept the token; check --token-file, $CERTWRIGHT_TOKEN_FILE, $CERTWRIGHT_TOKEN or DATA/admin.token"}
	case http.StatusServiceUnavailable:
		return &hintError{e, "HTTP 503: the server is up but its database did not answer; retry shortly (the server's /healthz says degraded while this lasts, and its log says why)"}
	case http.StatusForbidden:
		return &hintError{e, "HTTP 403: " + refusalHint(e.body.Rule)}
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return &hintError{e, "the server answered with a redirect; --server must be the certwright API's base URL"}
	}
	return e
}

// refusalHint is the fix for a 403, by the rule the server says refused.
func refusalHint(rule string) string {
	switch rule {
	case "role":
		return "you are authenticated, but no role of yours grants this; an administrator can check with `certwright role bindings --principal NAME` and grant one with `certwright role bind`"
	case "scope":
		return "a role of yours grants this, but its scope (CAs, profiles, names) does not cover this certificate or CA; an administrator can check the scope with `certwright role bindings --principal NAME`"
	case "two_person_rule":
		return "the two-person rule: whoever requested it cannot approve or reject it; another principal with request:approve must (certwright request approve ID)"
	case "machine_only_key_handout":
		return "the server hands private keys to machine principals only: make the key yourself and send a CSR (certwright cert sign --csr FILE), or use a machine principal's token"
	case "escalation":
		return "nobody grants or acts on more than they hold: ask a principal holding at least as much (for the admin role, admin unscoped)"
	}
	return "you are authenticated, but the server refused this for the reason above"
}

// transportError explains a request that got no HTTP answer.
func (c *client) transportError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("request to %s: %w", c.base, ctx.Err())
	}
	inner := err
	var ue *url.Error
	if errors.As(err, &ue) {
		inner = ue.Err
	}
	var unknownCA x509.UnknownAuthorityError
	var badHost x509.HostnameError
	var netErr net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return &hintError{fmt.Errorf("cannot connect to %s: connection refused", c.base),
			"the server is not running: start it with `certwright serve`, or check --server"}
	case errors.As(err, &unknownCA):
		return &hintError{fmt.Errorf("cannot connect to %s: the server's certificate is not signed by a trusted root", c.base),
			"--ca-file (default DATA/root.pem) must hold the root that issued the server's certificate"}
	case errors.As(err, &badHost):
		return &hintError{fmt.Errorf("cannot connect to %s: %v", c.base, badHost),
			"--server must name a host or address that the server's certificate covers"}
	case errors.As(err, &netErr) && netErr.Timeout():
		return &hintError{fmt.Errorf("request to %s timed out: %v", c.base, inner),
			"is the server reachable from here? check --server"}
	}
	return fmt.Errorf("request to %s: %w", c.base, inner)
}

func (c *client) getJSON(ctx context.Context, path string, query url.Values, out any) error {
	_, err := c.request(ctx, http.MethodGet, path, query, nil, "", out)
	return err
}

func (c *client) postJSON(ctx context.Context, path string, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
	}
	_, err := c.request(ctx, http.MethodPost, path, nil, body, "application/json", out)
	return err
}

func (c *client) getPEM(ctx context.Context, path string, query url.Values) ([]byte, error) {
	return c.request(ctx, http.MethodGet, path, query, nil, "", nil)
}

// ListCAs lists every CA.
func (c *client) ListCAs(ctx context.Context) (apitypes.CAList, error) {
	var out apitypes.CAList
	err := c.getJSON(ctx, "/api/v1/cas", nil, &out)
	return out, err
}

// CreateCA creates a root, intermediate or external CA.
func (c *client) CreateCA(ctx context.Context, req apitypes.CreateCARequest) (apitypes.CA, error) {
	var out apitypes.CA
	err := c.postJSON(ctx, "/api/v1/cas", req, &out)
	return out, err
}

// GetCA shows one CA by ID or name.
func (c *client) GetCA(ctx context.Context, ca string) (apitypes.CA, error) {
	var out apitypes.CA
	err := c.getJSON(ctx, "/api/v1/cas/"+seg(ca), nil, &out)
	return out, err
}

// CAChain returns the CA's certificate and its parents up to the root, as PEM.
func (c *client) CAChain(ctx context.Context, ca string) ([]byte, error) {
	return c.getPEM(ctx, "/api/v1/cas/"+seg(ca)+"/chain", nil)
}

// CACSR returns the CSR of a pending external CA, as PEM.
func (c *client) CACSR(ctx context.Context, ca string) ([]byte, error) {
	return c.getPEM(ctx, "/api/v1/cas/"+seg(ca)+"/csr", nil)
}

// ImportCA completes a pending external CA with its signed certificate.
func (c *client) ImportCA(ctx context.Context, ca string, req apitypes.ImportCARequest) (apitypes.CA, error) {
	var out apitypes.CA
	err := c.postJSON(ctx, "/api/v1/cas/"+seg(ca)+"/certificate", req, &out)
	return out, err
}

// ImportRoot records an offline root from its certificate.
func (c *client) ImportRoot(ctx context.Context, req apitypes.ImportRootRequest) (apitypes.CA, error) {
	var out apitypes.CA
	err := c.postJSON(ctx, "/api/v1/cas/import-root", req, &out)
	return out, err
}

// ImportCRL uploads the CRL an offline root signed at its ceremony.
func (c *client) ImportCRL(ctx context.Context, ca string, req apitypes.ImportCRLRequest) (apitypes.ImportedCRL, error) {
	var out apitypes.ImportedCRL
	err := c.postJSON(ctx, "/api/v1/cas/"+seg(ca)+"/crl", req, &out)
	return out, err
}

func (c *client) caState(ctx context.Context, ca, action string) (apitypes.CA, error) {
	var out apitypes.CA
	err := c.postJSON(ctx, "/api/v1/cas/"+seg(ca)+"/"+action, nil, &out)
	return out, err
}

// DisableCA stops a CA from issuing.
func (c *client) DisableCA(ctx context.Context, ca string) (apitypes.CA, error) {
	return c.caState(ctx, ca, "disable")
}

// EnableCA lets a disabled CA issue again.
func (c *client) EnableCA(ctx context.Context, ca string) (apitypes.CA, error) {
	return c.caState(ctx, ca, "enable")
}

// DeleteCA soft-deletes a CA; it can be restored for a while.
func (c *client) DeleteCA(ctx context.Context, ca string) (apitypes.CA, error) {
	return c.caState(ctx, ca, "delete")
}

// RestoreCA undoes a soft delete.
func (c *client) RestoreCA(ctx context.Context, ca string) (apitypes.CA, error) {
	return c.caState(ctx, ca, "restore")
}

// pendingError is a sign request the server accepted (202) but holds until
// a second principal approves it: nothing was issued yet.
type pendingError struct {
	Request apitypes.ApprovalRequest
}

func (e *pendingError) Error() string {
	return fmt.Sprintf("request %s is pending approval (expires %s)", e.Request.ID, showTime(e.Request.ExpiresAt))
}

// Sign issues a certificate for a CSR. When the profile requires approval
// the server answers 202 and Sign returns a *pendingError.
func (c *client) Sign(ctx context.Context, req apitypes.SignRequest) (apitypes.IssuedCertificate, error) {
	var out apitypes.IssuedCertificate
	body, err := json.Marshal(req)
	if err != nil {
		return out, fmt.Errorf("encode request: %w", err)
	}
	status, data, err := c.requestStatus(ctx, http.MethodPost, "/api/v1/certificates/sign", nil, body, "application/json", nil)
	if err != nil {
		return out, err
	}
	if status == http.StatusAccepted {
		var pending apitypes.ApprovalRequest
		if err := json.Unmarshal(data, &pending); err != nil || pending.ID == "" {
			return out, fmt.Errorf("POST /api/v1/certificates/sign: the server held the request for approval but its answer is not an approval request")
		}
		return out, &pendingError{Request: pending}
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return out, fmt.Errorf("POST /api/v1/certificates/sign: the server's answer is not the expected JSON: %w", err)
	}
	return out, nil
}

// Issue issues a certificate with a key the server generates.
func (c *client) Issue(ctx context.Context, req apitypes.IssueRequest) (apitypes.IssuedCertificate, error) {
	var out apitypes.IssuedCertificate
	err := c.postJSON(ctx, "/api/v1/certificates/issue", req, &out)
	return out, err
}

// certFilter selects inventory records; empty fields do not filter.
type certFilter struct {
	CA, Profile, Status, SAN, Tag string
	// Source is issued, acme, imported or discovered.
	Source         string
	ExpiringWithin string // e.g. "30d"
	// Sort is "expiry" or "serial" (the API's default).
	Sort string
	// Current drops revoked certificates and those a renewal superseded.
	Current bool
	Limit   int
	After   string
}

func (f certFilter) query() url.Values {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("ca", f.CA)
	set("profile", f.Profile)
	set("status", f.Status)
	set("san", f.SAN)
	set("tag", f.Tag)
	set("source", f.Source)
	set("expiring_within", f.ExpiringWithin)
	set("sort", f.Sort)
	if f.Current {
		q.Set("current", "true")
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	set("after", f.After)
	return q
}

// ListCertificates returns one page of inventory.
func (c *client) ListCertificates(ctx context.Context, f certFilter) (apitypes.CertificateList, error) {
	var out apitypes.CertificateList
	err := c.getJSON(ctx, "/api/v1/certificates", f.query(), &out)
	return out, err
}

// GetCertificate shows one inventory record, with its PEM.
func (c *client) GetCertificate(ctx context.Context, serial string) (apitypes.Certificate, error) {
	var out apitypes.Certificate
	err := c.getJSON(ctx, "/api/v1/certificates/"+seg(serial), nil, &out)
	return out, err
}

// CertificatePEM returns the certificate as PEM, followed by its chain
// without the root when chain is true.
func (c *client) CertificatePEM(ctx context.Context, serial string, chain bool) ([]byte, error) {
	var q url.Values
	if chain {
		q = url.Values{"chain": {"true"}}
	}
	return c.getPEM(ctx, "/api/v1/certificates/"+seg(serial)+"/pem", q)
}

// ListProfiles lists built-in and custom profiles.
func (c *client) ListProfiles(ctx context.Context) (apitypes.ProfileList, error) {
	var out apitypes.ProfileList
	err := c.getJSON(ctx, "/api/v1/profiles", nil, &out)
	return out, err
}

// GetProfile shows one profile's definition.
func (c *client) GetProfile(ctx context.Context, name string) (map[string]any, error) {
	var out map[string]any
	err := c.getJSON(ctx, "/api/v1/profiles/"+seg(name), nil, &out)
	return out, err
}

// CreateProfile uploads a new profile definition (YAML or JSON as given).
func (c *client) CreateProfile(ctx context.Context, def []byte, contentType string) (map[string]any, error) {
	var out map[string]any
	_, err := c.request(ctx, http.MethodPost, "/api/v1/profiles", nil, def, contentType, &out)
	return out, err
}

// UpdateProfile replaces a custom profile's definition.
func (c *client) UpdateProfile(ctx context.Context, name string, def []byte, contentType string) (map[string]any, error) {
	var out map[string]any
	_, err := c.request(ctx, http.MethodPut, "/api/v1/profiles/"+seg(name), nil, def, contentType, &out)
	return out, err
}

// DeleteProfile removes a custom profile.
func (c *client) DeleteProfile(ctx context.Context, name string) error {
	_, err := c.request(ctx, http.MethodDelete, "/api/v1/profiles/"+seg(name), nil, nil, "", nil)
	return err
}

// RevokeCertificate revokes one certificate.
func (c *client) RevokeCertificate(ctx context.Context, serial string, req apitypes.RevokeRequest) (apitypes.Revocation, error) {
	var out apitypes.Revocation
	err := c.postJSON(ctx, "/api/v1/certificates/"+seg(serial)+"/revoke", req, &out)
	return out, err
}

// RevokeBulk revokes (or with DryRun lists) every certificate matching a selector.
func (c *client) RevokeBulk(ctx context.Context, req apitypes.BulkRevokeRequest) (apitypes.BulkRevokeResult, error) {
	var out apitypes.BulkRevokeResult
	err := c.postJSON(ctx, "/api/v1/revocations", req, &out)
	return out, err
}

// RevokeCA revokes a subordinate CA's certificate and disables the CA.
func (c *client) RevokeCA(ctx context.Context, ca string, req apitypes.RevokeRequest) (apitypes.Revocation, error) {
	var out apitypes.Revocation
	err := c.postJSON(ctx, "/api/v1/cas/"+seg(ca)+"/revoke", req, &out)
	return out, err
}
