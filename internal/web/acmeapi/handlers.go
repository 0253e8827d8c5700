package acmeapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/acme"
	"github.com/certwright/certwright/internal/netsource"
)

// ordersPageSize is how many order URLs one orders-list page holds.
const ordersPageSize = 100

// defaultRenewalRetry is the Retry-After of renewal information when the
// service names none (RFC 9773 §4.3 suggests hours).
const defaultRenewalRetry = 6 * time.Hour

// Payloads (RFC 8555 §7). Unknown fields are allowed; a known field of the
// wrong type is malformed.
type newAccountPayload struct {
	Contact                []string        `json:"contact"`
	TermsOfServiceAgreed   bool            `json:"termsOfServiceAgreed"`
	OnlyReturnExisting     bool            `json:"onlyReturnExisting"`
	ExternalAccountBinding json.RawMessage `json:"externalAccountBinding"`
}

type accountUpdatePayload struct {
	Contact *[]string `json:"contact"`
	Status  string    `json:"status"`
}

type newOrderPayload struct {
	Identifiers []acme.Identifier `json:"identifiers"`
	NotBefore   string            `json:"notBefore"`
	NotAfter    string            `json:"notAfter"`
	Replaces    string            `json:"replaces"`
}

type finalizePayload struct {
	CSR string `json:"csr"`
}

type statusPayload struct {
	Status string `json:"status"`
}

type revokePayload struct {
	Certificate string `json:"certificate"`
	Reason      *int   `json:"reason"`
}

// decodePayload decodes a payload that must be one JSON object.
func decodePayload(payload []byte, v any) error {
	if t := bytes.TrimSpace(payload); len(t) == 0 || t[0] != '{' {
		return malformed("payload must be a JSON object")
	}
	if err := json.Unmarshal(payload, v); err != nil {
		return malformed("payload: %v", err)
	}
	return nil
}

// postAsGet requires the empty payload of a POST-as-GET (RFC 8555 §6.3).
func postAsGet(payload []byte) error {
	if len(payload) != 0 {
		return malformed("payload must be empty (POST-as-GET)")
	}
	return nil
}

// decodeB64 decodes a base64url field, tolerating padding.
func decodeB64(field, s string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil || len(b) == 0 {
		return nil, malformed("%s must be base64url-encoded DER", field)
	}
	return b, nil
}

func retryAfter(w http.ResponseWriter, d time.Duration) {
	secs := int64((d + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
}

// ownAccount refuses an account URL other than the signer's.
func ownAccount(rq *request) error {
	if rq.args[0] != rq.acct.ID {
		return acme.NewProblem(acme.ErrUnauthorized, "the request is signed by account %q, not %q",
			rq.urls.account(rq.acct.ID), rq.urls.account(rq.args[0]))
	}
	return nil
}

func (h *Handler) directory(w http.ResponseWriter, rq *request) error {
	writeJSON(w, http.StatusOK, renderDirectory(rq.urls, rq.prov))
	return nil
}

// newNonce answers HEAD with 200 and GET with 204 (RFC 8555 §7.2).
func (h *Handler) newNonce(w http.ResponseWriter, rq *request) error {
	n, err := h.d.Service.NewNonce(rq.ctx())
	if err != nil {
		return err
	}
	w.Header().Set("Replay-Nonce", n)
	w.Header().Set("Cache-Control", "no-store")
	if rq.r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
	} else {
		w.WriteHeader(http.StatusNoContent)
	}
	return nil
}

// renewalInfo is RFC 9773 §4.2's unauthenticated GET.
func (h *Handler) renewalInfo(w http.ResponseWriter, rq *request) error {
	ri, err := h.d.Service.RenewalInfo(rq.ctx(), rq.args[0])
	if err != nil {
		return err
	}
	d := ri.RetryAfter
	if d <= 0 {
		d = defaultRenewalRetry
	}
	retryAfter(w, d)
	writeJSON(w, http.StatusOK, renderRenewalInfo(ri))
	return nil
}

// newAccount is RFC 8555 §7.3, with external account binding (§7.3.4).
func (h *Handler) newAccount(w http.ResponseWriter, rq *request) error {
	var p newAccountPayload
	if err := decodePayload(rq.payload, &p); err != nil {
		return err
	}
	tp, err := thumbprint(rq.key)
	if err != nil {
		return err
	}
	jwk, err := publicJWKJSON(rq.key)
	if err != nil {
		return err
	}
	req := acme.NewAccountRequest{
		Thumbprint: tp, JWK: jwk, Contact: p.Contact, TermsAgreed: p.TermsOfServiceAgreed,
		OnlyReturnExisting: p.OnlyReturnExisting, ClientIP: netsource.RemoteHost(rq.r.RemoteAddr),
	}
	if eab := bytes.TrimSpace(p.ExternalAccountBinding); len(eab) > 0 && !bytes.Equal(eab, []byte("null")) && !p.OnlyReturnExisting {
		keyID, err := h.externalAccountBinding(rq, eab, tp)
		if err != nil {
			return err
		}
		req.EABKeyID = keyID
	}
	acct, created, err := h.d.Service.NewAccount(rq.ctx(), rq.prov, req)
	if err != nil {
		return err
	}
	rq.acct = acct
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	w.Header().Set("Location", rq.urls.account(acct.ID))
	writeJSON(w, status, renderAccount(rq.urls, acct))
	return nil
}

// externalAccountBinding verifies the binding of a new-account request
// and returns its key ID. A key already registered skips it: its key
// is bound by now, and NewAccount answers with the existing account
// (RFC 8555 §7.3.1), as clients that always send the binding expect.
func (h *Handler) externalAccountBinding(rq *request, eab []byte, tp string) (string, error) {
	b, err := parseEAB(eab, rq.jws.URL)
	if err != nil {
		return "", err
	}
	if _, err := h.d.Service.AccountByKey(rq.ctx(), rq.prov, tp); err == nil {
		return "", nil
	} else if p := acme.AsProblem(err); p == nil {
		return "", err
	} else if p.Type != acme.ErrAccountDoesNotExist {
		return "", nil // deactivated: NewAccount says so
	}
	hmacKey, err := h.d.Service.EABKey(rq.ctx(), rq.prov, b.KeyID)
	if err != nil {
		return "", err
	}
	if err := b.verify(hmacKey, rq.key); err != nil {
		return "", err
	}
	return b.KeyID, nil
}

// account reads or updates the signer's account (RFC 8555 §7.3.2, §7.3.6).
func (h *Handler) account(w http.ResponseWriter, rq *request) error {
	if err := ownAccount(rq); err != nil {
		return err
	}
	acct := rq.acct
	if len(rq.payload) > 0 {
		var p accountUpdatePayload
		if err := decodePayload(rq.payload, &p); err != nil {
			return err
		}
		if p.Status != "" && p.Status != acme.StatusDeactivated {
			return malformed("an account's status can only be changed to %q", acme.StatusDeactivated)
		}
		var contact []string
		if p.Contact != nil {
			contact = *p.Contact
			if contact == nil {
				contact = []string{}
			}
		}
		if contact != nil || p.Status != "" {
			var err error
			if acct, err = h.d.Service.UpdateAccount(rq.ctx(), rq.prov, acct, contact, p.Status != ""); err != nil {
				return err
			}
		}
	}
	w.Header().Set("Location", rq.urls.account(acct.ID))
	writeJSON(w, http.StatusOK, renderAccount(rq.urls, acct))
	return nil
}

// accountOrders lists the account's orders, a page at a time with a
// "next" link (RFC 8555 §7.1.2.1).
func (h *Handler) accountOrders(w http.ResponseWriter, rq *request) error {
	if err := ownAccount(rq); err != nil {
		return err
	}
	if err := postAsGet(rq.payload); err != nil {
		return err
	}
	ids, err := h.d.Service.OrderIDs(rq.ctx(), rq.acct, rq.r.URL.Query().Get("cursor"), ordersPageSize+1)
	if err != nil {
		return err
	}
	if len(ids) > ordersPageSize {
		ids = ids[:ordersPageSize]
		next := rq.urls.accountOrders(rq.acct.ID) + "?cursor=" + url.QueryEscape(ids[len(ids)-1])
		w.Header().Add("Link", link(next, "next"))
	}
	obj := ordersObj{Orders: make([]string, len(ids))}
	for i, id := range ids {
		obj.Orders[i] = rq.urls.order(id)
	}
	writeJSON(w, http.StatusOK, obj)
	return nil
}

// keyChange is RFC 8555 §7.3.5's key rollover.
func (h *Handler) keyChange(w http.ResponseWriter, rq *request) error {
	oldTP, err := thumbprint(rq.key)
	if err != nil {
		return err
	}
	newKey, err := verifyKeyChange(rq.payload, rq.jws.URL, rq.jws.KeyID, oldTP)
	if err != nil {
		return err
	}
	tp, err := thumbprint(newKey)
	if err != nil {
		return err
	}
	jwk, err := publicJWKJSON(newKey)
	if err != nil {
		return err
	}
	acct, err := h.d.Service.ChangeKey(rq.ctx(), rq.prov, rq.acct, tp, jwk)
	if err != nil {
		return err
	}
	w.Header().Set("Location", rq.urls.account(acct.ID))
	writeJSON(w, http.StatusOK, renderAccount(rq.urls, acct))
	return nil
}

// newOrder is RFC 8555 §7.4 with RFC 9773 §5's "replaces".
func (h *Handler) newOrder(w http.ResponseWriter, rq *request) error {
	var p newOrderPayload
	if err := decodePayload(rq.payload, &p); err != nil {
		return err
	}
	o, err := h.d.Service.NewOrder(rq.ctx(), rq.prov, rq.acct, acme.OrderRequest{
		Identifiers: p.Identifiers, NotBefore: p.NotBefore, NotAfter: p.NotAfter, Replaces: p.Replaces,
	})
	if err != nil {
		return err
	}
	h.writeOrder(w, rq, http.StatusCreated, o)
	return nil
}

func (h *Handler) writeOrder(w http.ResponseWriter, rq *request, status int, o *acme.Order) {
	w.Header().Set("Location", rq.urls.order(o.ID))
	if o.Status == acme.StatusProcessing {
		retryAfter(w, time.Second)
	}
	writeJSON(w, status, renderOrder(rq.urls, o))
}

func (h *Handler) order(w http.ResponseWriter, rq *request) error {
	if err := postAsGet(rq.payload); err != nil {
		return err
	}
	o, err := h.d.Service.Order(rq.ctx(), rq.acct, rq.args[0])
	if err != nil {
		return err
	}
	h.writeOrder(w, rq, http.StatusOK, o)
	return nil
}

// finalize is RFC 8555 §7.4's CSR submission.
func (h *Handler) finalize(w http.ResponseWriter, rq *request) error {
	var p finalizePayload
	if err := decodePayload(rq.payload, &p); err != nil {
		return err
	}
	csr, err := decodeB64("csr", p.CSR)
	if err != nil {
		return err
	}
	o, err := h.d.Service.Finalize(rq.ctx(), rq.prov, rq.acct, rq.args[0], csr)
	if err != nil {
		return err
	}
	h.writeOrder(w, rq, http.StatusOK, o)
	return nil
}

// authz reads an authorization, or deactivates it (RFC 8555 §7.5.2).
func (h *Handler) authz(w http.ResponseWriter, rq *request) error {
	var (
		a   *acme.Authorization
		err error
	)
	if len(rq.payload) == 0 {
		a, err = h.d.Service.Authorization(rq.ctx(), rq.acct, rq.args[0])
	} else {
		var p statusPayload
		if err := decodePayload(rq.payload, &p); err != nil {
			return err
		}
		if p.Status != acme.StatusDeactivated {
			return malformed("an authorization's status can only be changed to %q", acme.StatusDeactivated)
		}
		a, err = h.d.Service.DeactivateAuthorization(rq.ctx(), rq.acct, rq.args[0])
	}
	if err != nil {
		return err
	}
	if a.Status == acme.StatusPending || a.Status == acme.StatusProcessing {
		retryAfter(w, time.Second)
	}
	writeJSON(w, http.StatusOK, renderAuthz(rq.urls, a))
	return nil
}

// challenge starts validation on a "{}" payload (RFC 8555 §7.5.1); an
// empty payload reads the challenge (POST-as-GET) without starting it.
func (h *Handler) challenge(w http.ResponseWriter, rq *request) error {
	authzID, chID := rq.args[0], rq.args[1]
	var ch *acme.Challenge
	if len(rq.payload) == 0 {
		a, err := h.d.Service.Authorization(rq.ctx(), rq.acct, authzID)
		if err != nil {
			return err
		}
		for i := range a.Challenges {
			if a.Challenges[i].ID == chID {
				ch = &a.Challenges[i]
			}
		}
		if ch == nil {
			return notFound("authorization %s has no challenge %s", authzID, chID)
		}
	} else {
		var p struct{}
		if err := decodePayload(rq.payload, &p); err != nil {
			return err
		}
		var err error
		if ch, _, err = h.d.Service.RespondChallenge(rq.ctx(), rq.acct, authzID, chID, netsource.RemoteHost(rq.r.RemoteAddr)); err != nil {
			return err
		}
	}
	w.Header().Add("Link", link(rq.urls.authz(authzID), "up"))
	if ch.Status == acme.StatusPending || ch.Status == acme.StatusProcessing {
		retryAfter(w, time.Second)
	}
	writeJSON(w, http.StatusOK, renderChallenge(rq.urls, authzID, ch))
	return nil
}

// cert downloads a certificate chain (RFC 8555 §7.4.2).
func (h *Handler) cert(w http.ResponseWriter, rq *request) error {
	if err := postAsGet(rq.payload); err != nil {
		return err
	}
	chain, err := h.d.Service.CertificateChain(rq.ctx(), rq.acct, rq.args[0])
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/pem-certificate-chain")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(chain)
	return nil
}

// revokeCert is RFC 8555 §7.6: signed by an account (kid) or by the
// certificate's own key (jwk).
func (h *Handler) revokeCert(w http.ResponseWriter, rq *request) error {
	var p revokePayload
	if err := decodePayload(rq.payload, &p); err != nil {
		return err
	}
	der, err := decodeB64("certificate", p.Certificate)
	if err != nil {
		return err
	}
	if rq.acct != nil {
		err = h.d.Service.Revoke(rq.ctx(), rq.prov, rq.acct, nil, der, p.Reason)
	} else {
		err = h.d.Service.Revoke(rq.ctx(), rq.prov, nil, rq.key.Key, der, p.Reason)
	}
	if err != nil {
		return err
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
	return nil
}
