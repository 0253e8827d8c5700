package acmeapi

import (
	"encoding/json"
	"io"
	"net/http"
	"time"

	"github.com/certwright/certwright/internal/acme"
)

// urls builds the URLs of one provisioner's resources: base is scheme and
// host, name the provisioner's path segment.
type urls struct {
	base, name string
}

func (u urls) dir() string                         { return u.base + "/acme/" + u.name }
func (u urls) directory() string                   { return u.dir() + "/directory" }
func (u urls) accountPrefix() string               { return u.dir() + "/account/" }
func (u urls) account(id string) string            { return u.accountPrefix() + id }
func (u urls) accountOrders(id string) string      { return u.account(id) + "/orders" }
func (u urls) order(id string) string              { return u.dir() + "/order/" + id }
func (u urls) finalize(id string) string           { return u.order(id) + "/finalize" }
func (u urls) authz(id string) string              { return u.dir() + "/authz/" + id }
func (u urls) challenge(authzID, id string) string { return u.dir() + "/chall/" + authzID + "/" + id }
func (u urls) cert(serial string) string           { return u.dir() + "/cert/" + serial }

// timestamp is t in RFC 3339, UTC; "" for the zero time.
func timestamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// directoryObj is the directory (RFC 8555 §7.1.1, RFC 9773 §4).
type directoryObj struct {
	NewNonce    string        `json:"newNonce"`
	NewAccount  string        `json:"newAccount"`
	NewOrder    string        `json:"newOrder"`
	RevokeCert  string        `json:"revokeCert"`
	KeyChange   string        `json:"keyChange"`
	RenewalInfo string        `json:"renewalInfo"`
	Meta        directoryMeta `json:"meta"`
}

type directoryMeta struct {
	TermsOfService          string `json:"termsOfService,omitempty"`
	Website                 string `json:"website,omitempty"`
	ExternalAccountRequired bool   `json:"externalAccountRequired"`
}

func renderDirectory(u urls, p *acme.Provisioner) directoryObj {
	d := u.dir()
	return directoryObj{
		NewNonce: d + "/new-nonce", NewAccount: d + "/new-account", NewOrder: d + "/new-order",
		RevokeCert: d + "/revoke-cert", KeyChange: d + "/key-change", RenewalInfo: d + "/renewal-info",
		Meta: directoryMeta{TermsOfService: p.TermsOfService, Website: p.Website, ExternalAccountRequired: p.RequireEAB},
	}
}

// accountObj is an account (RFC 8555 §7.1.2).
type accountObj struct {
	Status               string   `json:"status"`
	Contact              []string `json:"contact,omitempty"`
	TermsOfServiceAgreed bool     `json:"termsOfServiceAgreed"`
	Orders               string   `json:"orders"`
}

func renderAccount(u urls, a *acme.Account) accountObj {
	return accountObj{Status: a.Status, Contact: a.Contact, TermsOfServiceAgreed: a.TermsAgreed, Orders: u.accountOrders(a.ID)}
}

// ordersObj is an account's orders list (RFC 8555 §7.1.2.1).
type ordersObj struct {
	Orders []string `json:"orders"`
}

// orderObj is an order (RFC 8555 §7.1.3, RFC 9773 §5).
type orderObj struct {
	Status         string            `json:"status"`
	Expires        string            `json:"expires,omitempty"`
	Identifiers    []acme.Identifier `json:"identifiers"`
	NotBefore      string            `json:"notBefore,omitempty"`
	NotAfter       string            `json:"notAfter,omitempty"`
	Error          *problemDoc       `json:"error,omitempty"`
	Authorizations []string          `json:"authorizations"`
	Finalize       string            `json:"finalize"`
	Certificate    string            `json:"certificate,omitempty"`
	Replaces       string            `json:"replaces,omitempty"`
}

func renderOrder(u urls, o *acme.Order) orderObj {
	obj := orderObj{
		Status: o.Status, Expires: timestamp(o.Expires), Identifiers: o.Identifiers,
		NotBefore: timestamp(o.NotBefore), NotAfter: timestamp(o.NotAfter),
		Authorizations: make([]string, len(o.AuthzIDs)), Finalize: u.finalize(o.ID), Replaces: o.Replaces,
	}
	if obj.Identifiers == nil {
		obj.Identifiers = []acme.Identifier{}
	}
	for i, id := range o.AuthzIDs {
		obj.Authorizations[i] = u.authz(id)
	}
	if o.CertSerial != "" {
		obj.Certificate = u.cert(o.CertSerial)
	}
	if o.Error != nil {
		d := renderProblem(o.Error, o.Error.Status())
		obj.Error = &d
	}
	return obj
}

// authzObj is an authorization (RFC 8555 §7.1.4).
type authzObj struct {
	Identifier acme.Identifier `json:"identifier"`
	Status     string          `json:"status"`
	Expires    string          `json:"expires,omitempty"`
	Challenges []challengeObj  `json:"challenges"`
	Wildcard   bool            `json:"wildcard,omitempty"`
}

func renderAuthz(u urls, a *acme.Authorization) authzObj {
	obj := authzObj{Identifier: a.Identifier, Status: a.Status, Expires: timestamp(a.Expires),
		Challenges: make([]challengeObj, len(a.Challenges)), Wildcard: a.Wildcard}
	for i := range a.Challenges {
		obj.Challenges[i] = renderChallenge(u, a.ID, &a.Challenges[i])
	}
	return obj
}

// challengeObj is a challenge (RFC 8555 §7.1.5, §8).
type challengeObj struct {
	Type      string      `json:"type"`
	URL       string      `json:"url"`
	Status    string      `json:"status"`
	Token     string      `json:"token"`
	Validated string      `json:"validated,omitempty"`
	Error     *problemDoc `json:"error,omitempty"`
}

func renderChallenge(u urls, authzID string, c *acme.Challenge) challengeObj {
	if c.AuthzID != "" {
		authzID = c.AuthzID
	}
	obj := challengeObj{Type: c.Type, URL: u.challenge(authzID, c.ID), Status: c.Status, Token: c.Token,
		Validated: timestamp(c.Validated)}
	if c.Error != nil {
		d := renderProblem(c.Error, c.Error.Status())
		obj.Error = &d
	}
	return obj
}

// renewalInfoObj is RFC 9773 §4.2's response.
type renewalInfoObj struct {
	SuggestedWindow struct {
		Start string `json:"start"`
		End   string `json:"end"`
	} `json:"suggestedWindow"`
	ExplanationURL string `json:"explanationURL,omitempty"`
}

func renderRenewalInfo(ri *acme.RenewalInfo) renewalInfoObj {
	var obj renewalInfoObj
	obj.SuggestedWindow.Start = timestamp(ri.Start)
	obj.SuggestedWindow.End = timestamp(ri.End)
	obj.ExplanationURL = ri.ExplanationURL
	return obj
}

// writeBody writes v as JSON with status. The headers are set by now, so
// an encoding failure can only be logged by the caller's status line.
func writeBody(w http.ResponseWriter, status int, contentType string, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		// Every value written here is a plain struct of strings; this
		// cannot happen short of a programming error.
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, `{"type":"`+acme.URNPrefix+`serverInternal","detail":"internal error","status":500}`+"\n")
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	writeBody(w, status, "application/json", v)
}
