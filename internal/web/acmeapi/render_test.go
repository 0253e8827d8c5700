package acmeapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/acme"
)

var testURLs = urls{base: "https://ca.example", name: "prov"}

// assertJSON compares v's JSON with want, both normalised.
func assertJSON(t *testing.T, v any, want string) {
	t.Helper()
	got, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	assertJSONBytes(t, got, want)
}

func assertJSONBytes(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("got is not JSON: %v\n%s", err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("want is not JSON: %v", err)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	if string(gb) != string(wb) {
		t.Errorf("JSON mismatch\n got: %s\nwant: %s", gb, wb)
	}
}

func TestRenderObjects(t *testing.T) {
	t.Parallel()
	ts := time.Date(2026, 3, 4, 5, 6, 7, 890, time.FixedZone("x", 3600))
	prob := &acme.Problem{Type: acme.ErrCompound, Detail: "2 identifiers failed",
		Subproblems: []*acme.Problem{
			{Type: acme.ErrDNS, Detail: "no such host", Identifier: &acme.Identifier{Type: "dns", Value: "a.example"}},
			{Type: acme.ErrRejectedIdentifier, Detail: "not allowed"},
		}}
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"account", renderAccount(testURLs, &acme.Account{ID: "a1", Status: "valid", TermsAgreed: true}),
			`{"status":"valid","termsOfServiceAgreed":true,"orders":"https://ca.example/acme/prov/account/a1/orders"}`},
		{"account with contact", renderAccount(testURLs, &acme.Account{ID: "a1", Status: "deactivated", Contact: []string{"mailto:a@example.com"}}),
			`{"status":"deactivated","contact":["mailto:a@example.com"],"termsOfServiceAgreed":false,"orders":"https://ca.example/acme/prov/account/a1/orders"}`},
		{"pending order", renderOrder(testURLs, &acme.Order{ID: "o1", Status: "pending", Expires: ts,
			Identifiers: []acme.Identifier{{Type: "dns", Value: "*.a.example"}}, AuthzIDs: []string{"z1"}}),
			`{"status":"pending","expires":"2026-03-04T04:06:07Z","identifiers":[{"type":"dns","value":"*.a.example"}],
			  "authorizations":["https://ca.example/acme/prov/authz/z1"],"finalize":"https://ca.example/acme/prov/order/o1/finalize"}`},
		{"valid order", renderOrder(testURLs, &acme.Order{ID: "o1", Status: "valid", Expires: ts, NotBefore: ts, NotAfter: ts.Add(time.Hour),
			Identifiers: []acme.Identifier{{Type: "ip", Value: "192.0.2.1"}}, AuthzIDs: []string{"z1"}, CertSerial: "0a0b", Replaces: "aki.serial"}),
			`{"status":"valid","expires":"2026-03-04T04:06:07Z","identifiers":[{"type":"ip","value":"192.0.2.1"}],
			  "notBefore":"2026-03-04T04:06:07Z","notAfter":"2026-03-04T05:06:07Z",
			  "authorizations":["https://ca.example/acme/prov/authz/z1"],"finalize":"https://ca.example/acme/prov/order/o1/finalize",
			  "certificate":"https://ca.example/acme/prov/cert/0a0b","replaces":"aki.serial"}`},
		{"invalid order", renderOrder(testURLs, &acme.Order{ID: "o1", Status: "invalid", Expires: ts, Error: prob}),
			`{"status":"invalid","expires":"2026-03-04T04:06:07Z","identifiers":[],"authorizations":[],
			  "finalize":"https://ca.example/acme/prov/order/o1/finalize",
			  "error":{"type":"urn:ietf:params:acme:error:compound","detail":"2 identifiers failed","status":403,
			    "subproblems":[{"type":"urn:ietf:params:acme:error:dns","detail":"no such host","identifier":{"type":"dns","value":"a.example"}},
			                   {"type":"urn:ietf:params:acme:error:rejectedIdentifier","detail":"not allowed"}]}}`},
		{"wildcard authz", renderAuthz(testURLs, &acme.Authorization{ID: "z1", Status: "pending", Expires: ts, Wildcard: true,
			Identifier: acme.Identifier{Type: "dns", Value: "a.example"},
			Challenges: []acme.Challenge{{ID: "c1", AuthzID: "z1", Type: "dns-01", Token: "tok", Status: "pending"}}}),
			`{"identifier":{"type":"dns","value":"a.example"},"status":"pending","expires":"2026-03-04T04:06:07Z","wildcard":true,
			  "challenges":[{"type":"dns-01","url":"https://ca.example/acme/prov/chall/z1/c1","status":"pending","token":"tok"}]}`},
		{"authz without wildcard", renderAuthz(testURLs, &acme.Authorization{ID: "z1", Status: "valid", Expires: ts,
			Identifier: acme.Identifier{Type: "dns", Value: "a.example"}}),
			`{"identifier":{"type":"dns","value":"a.example"},"status":"valid","expires":"2026-03-04T04:06:07Z","challenges":[]}`},
		{"failed challenge", renderChallenge(testURLs, "z1", &acme.Challenge{ID: "c1", Type: "http-01", Token: "tok", Status: "invalid", Validated: ts,
			Error: &acme.Problem{Type: acme.ErrConnection, Detail: "refused", HTTPStatus: 0}}),
			`{"type":"http-01","url":"https://ca.example/acme/prov/chall/z1/c1","status":"invalid","token":"tok","validated":"2026-03-04T04:06:07Z",
			  "error":{"type":"urn:ietf:params:acme:error:connection","detail":"refused","status":400}}`},
		{"directory", renderDirectory(testURLs, &acme.Provisioner{Name: "prov", RequireEAB: true, TermsOfService: "https://tos.example"}),
			`{"newNonce":"https://ca.example/acme/prov/new-nonce","newAccount":"https://ca.example/acme/prov/new-account",
			  "newOrder":"https://ca.example/acme/prov/new-order","revokeCert":"https://ca.example/acme/prov/revoke-cert",
			  "keyChange":"https://ca.example/acme/prov/key-change","renewalInfo":"https://ca.example/acme/prov/renewal-info",
			  "meta":{"termsOfService":"https://tos.example","externalAccountRequired":true}}`},
		{"directory without meta", renderDirectory(testURLs, &acme.Provisioner{Name: "prov"}),
			`{"newNonce":"https://ca.example/acme/prov/new-nonce","newAccount":"https://ca.example/acme/prov/new-account",
			  "newOrder":"https://ca.example/acme/prov/new-order","revokeCert":"https://ca.example/acme/prov/revoke-cert",
			  "keyChange":"https://ca.example/acme/prov/key-change","renewalInfo":"https://ca.example/acme/prov/renewal-info",
			  "meta":{"externalAccountRequired":false}}`},
		{"renewal info", renderRenewalInfo(&acme.RenewalInfo{Start: ts, End: ts.Add(time.Hour), ExplanationURL: "https://x.example"}),
			`{"suggestedWindow":{"start":"2026-03-04T04:06:07Z","end":"2026-03-04T05:06:07Z"},"explanationURL":"https://x.example"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			assertJSON(t, tc.v, tc.want)
		})
	}
}

func TestWriteProblem(t *testing.T) {
	t.Parallel()
	rateLimited := acme.NewProblem(acme.ErrRateLimited, "slow down")
	rateLimited.RetryAfterSeconds = 3600
	// A key-change conflict: malformed, answered 409 with the other account.
	conflict := &acme.Problem{Type: acme.ErrMalformed, Detail: "key in use", Location: "account/a2", HTTPStatus: 409}
	notFoundProblem := &acme.Problem{Type: acme.ErrMalformed, Detail: "no order", HTTPStatus: 404}
	tests := []struct {
		name    string
		err     error
		status  int
		headers map[string]string
		body    string
	}{
		{"rate limited", rateLimited, 429, map[string]string{"Retry-After": "3600"},
			`{"type":"urn:ietf:params:acme:error:rateLimited","detail":"slow down","status":429}`},
		{"conflict", conflict, 409, map[string]string{"Location": "https://ca.example/acme/prov/account/a2"},
			`{"type":"urn:ietf:params:acme:error:malformed","detail":"key in use","status":409}`},
		{"service 404", notFoundProblem, 404, nil,
			`{"type":"urn:ietf:params:acme:error:malformed","detail":"no order","status":404}`},
		{"bad algorithm", badSignatureAlgorithm(signatureAlgorithms, "JWS algorithm %q is not supported", "HS256"), 400, nil,
			`{"type":"urn:ietf:params:acme:error:badSignatureAlgorithm","detail":"JWS algorithm \"HS256\" is not supported","status":400,
			  "algorithms":["ES256","ES384","RS256","EdDSA"]}`},
		{"method", methodNotAllowed("POST", "GET", "/acme/prov/new-order"), 405, map[string]string{"Allow": "POST"},
			`{"type":"urn:ietf:params:acme:error:malformed","detail":"method GET is not allowed on /acme/prov/new-order; use POST","status":405}`},
		{"max bytes", &http.MaxBytesError{Limit: 10}, 413, nil,
			`{"type":"urn:ietf:params:acme:error:malformed","detail":"request body is larger than 10 bytes","status":413}`},
		{"internal", errInternalForTest, 500, nil,
			`{"type":"urn:ietf:params:acme:error:serverInternal","detail":"internal error","status":500}`},
		{"not found sentinel", acme.ErrNotFound, 404, nil,
			`{"type":"urn:ietf:params:acme:error:malformed","detail":"no such resource","status":404}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h, fs, logs := newTestHandler(t)
			rec := httptest.NewRecorder()
			rq := &request{r: httptest.NewRequest("POST", "https://ca.example/acme/prov/x", nil), urls: testURLs}
			h.writeProblem(rec, rq, tc.err)
			if rec.Code != tc.status {
				t.Errorf("status = %d, want %d", rec.Code, tc.status)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if n := rec.Header().Get("Replay-Nonce"); n == "" || !fs.nonceIssued(n) {
				t.Errorf("Replay-Nonce = %q, want a fresh nonce", n)
			}
			for k, v := range tc.headers {
				if got := rec.Header().Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			assertJSONBytes(t, rec.Body.Bytes(), tc.body)
			if tc.status == 500 && !logs.contains("acme internal error") {
				t.Errorf("internal error not logged: %s", logs.String())
			}
		})
	}
}

// TestStoreUnavailableIs503: a store that missed the request's deadline
// is a retryable 503 (logged as internal), not a 500; a cancelled
// request stays a quiet 500.
func TestStoreUnavailableIs503(t *testing.T) {
	for _, tc := range []struct {
		name     string
		err      error
		status   int
		internal bool
	}{
		{"deadline", fmt.Errorf("store: get order: %w", context.DeadlineExceeded), http.StatusServiceUnavailable, true},
		{"canceled", fmt.Errorf("store: get order: %w", context.Canceled), http.StatusInternalServerError, false},
		{"other", errors.New("disk on fire"), http.StatusInternalServerError, true},
	} {
		pr, internal := toProblem(tc.err)
		if pr.httpStatus() != tc.status || internal != tc.internal {
			t.Errorf("%s: status %d, internal %v; want %d, %v", tc.name, pr.httpStatus(), internal, tc.status, tc.internal)
		}
	}
}
