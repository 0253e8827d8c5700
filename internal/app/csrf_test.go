package app

import (
	"context"
	"crypto/elliptic"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/certwright/certwright/internal/web/apitypes"
)

// tWriteBodies are bodies that would succeed on their route, so a write
// the guard let through would show up as stored state.
func tWriteBodies(t *testing.T) map[string]string {
	t.Helper()
	csr := string(tCSR(t, tECKey(t, elliptic.P256()), "csrf.example.internal"))
	j := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	return map[string]string{
		"profile.create":    `{"name":"csrf_prof","keys":[{"algorithm":"ECDSA","min_bits":256}],"max_validity_days":90,"renew_before_days":30,"ext_key_usage":["server_auth"],"names":{"dns":{"allow":true}}}`,
		"ca.create":         j(apitypes.CreateCARequest{Name: "csrf-ca", Type: "intermediate", Parent: "root", CommonName: "CSRF CA"}),
		"principal.create":  j(apitypes.CreatePrincipalRequest{Name: "csrf-admin", Kind: "machine", Role: "admin", Token: true}),
		"certificate.issue": j(apitypes.SignRequest{CSRPEM: csr, Profile: "web_server"}),
	}
}

// TestWritesRefuseCrossSiteRequests walks every state-changing route with
// the admin's credentials as a browser would send them from a foreign
// page: a form Content-Type, a text/plain body, a foreign Origin, a
// Sec-Fetch-Site of cross-site. Each is refused (415 or 403) with a JSON
// error, and nothing is stored.
func TestWritesRefuseCrossSiteRequests(t *testing.T) {
	t.Parallel()
	in := tNewServer(t, "")
	bodies := tWriteBodies(t)
	values := map[string]string{"ca": "issuing", "serial": "01", "name": "web_server", "id": "0123456789abcdef", "kind": "issued"}
	before := in.certCount()
	var cas apitypes.CAList
	in.must(http.StatusOK, "GET", "/api/v1/cas", nil, &cas)

	type probe struct {
		name        string
		contentType string
		header      map[string]string
		want        int
	}
	probes := []probe{
		{"form content type", "application/x-www-form-urlencoded", nil, http.StatusUnsupportedMediaType},
		{"multipart content type", "multipart/form-data; boundary=x", nil, http.StatusUnsupportedMediaType},
		{"text/plain", "text/plain", nil, http.StatusUnsupportedMediaType},
		{"json with odd parameter", "application/json; boundary=x", nil, http.StatusUnsupportedMediaType},
		{"foreign Origin", "application/json", map[string]string{"Origin": "https://evil.example"}, http.StatusForbidden},
		{"null Origin", "application/json", map[string]string{"Origin": "null"}, http.StatusForbidden},
		{"Sec-Fetch-Site cross-site", "application/json", map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"Sec-Fetch-Site same-site", "application/json", map[string]string{"Sec-Fetch-Site": "same-site"}, http.StatusForbidden},
	}
	send := func(method, path, ct, body string, hdr map[string]string) tResp {
		t.Helper()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, err := http.NewRequestWithContext(context.Background(), method, in.l.HTTPSURL+path, rd)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", in.bearer())
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := in.client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return tResp{status: resp.StatusCode, header: resp.Header, body: b}
	}
	writes := 0
	for _, rt := range tAPIRoutes(t, in.app) {
		if rt.Method == "GET" {
			continue
		}
		writes++
		path := tPath(t, rt.Pattern, values)
		body := bodies[rt.Action]
		if body == "" {
			body = "{}"
		}
		for _, p := range probes {
			r := send(rt.Method, path, p.contentType, body, p.header)
			if r.status != p.want {
				t.Errorf("%s %s, %s: status %d, want %d: %s", rt.Method, rt.Pattern, p.name, r.status, p.want, tTrim(r.body))
				continue
			}
			if e := r.apiErr(t); e.Detail == "" {
				t.Errorf("%s %s, %s: error without a detail", rt.Method, rt.Pattern, p.name)
			}
		}
		// An empty form post (a <form> with no fields) carries a form type
		// and no body: still refused.
		if r := send(rt.Method, path, "application/x-www-form-urlencoded", "", nil); r.status != http.StatusUnsupportedMediaType {
			t.Errorf("%s %s, empty form post: status %d, want 415", rt.Method, rt.Pattern, r.status)
		}
	}
	if writes < 30 {
		t.Fatalf("walked only %d write routes", writes)
	}

	// Nothing was stored.
	if n := in.certCount(); n != before {
		t.Errorf("%d certificates after refused writes, want %d", n, before)
	}
	var after apitypes.CAList
	in.must(http.StatusOK, "GET", "/api/v1/cas", nil, &after)
	if len(after.CAs) != len(cas.CAs) {
		t.Errorf("%d CAs after refused writes, want %d", len(after.CAs), len(cas.CAs))
	}
	for _, c := range after.CAs {
		if c.Status != "active" {
			t.Errorf("CA %s is %s after refused writes", c.Name, c.Status)
		}
	}
	for _, path := range []string{"/api/v1/profiles/csrf_prof", "/api/v1/principals/csrf-admin"} {
		if r := in.call("GET", path, nil); r.status != http.StatusNotFound {
			t.Errorf("GET %s after refused writes: %d, want 404", path, r.status)
		}
	}
	if r := in.call("GET", "/api/v1/profiles/web_server", nil); r.status != http.StatusOK {
		t.Errorf("built-in profile gone: %d", r.status)
	}

	// What API clients send still works: JSON with a charset, a bodiless
	// POST without a type, YAML on the profile routes, and the server's
	// own origin.
	if r := send("POST", "/api/v1/profiles", "application/json; charset=UTF-8", bodies["profile.create"], nil); r.status != http.StatusCreated {
		t.Errorf("JSON with charset: %d %s", r.status, tTrim(r.body))
	}
	if r := send("POST", "/api/v1/cas/issuing/disable", "", "", nil); r.status != http.StatusOK {
		t.Errorf("bodiless POST: %d %s", r.status, tTrim(r.body))
	}
	if r := send("POST", "/api/v1/cas/issuing/enable", "", "", map[string]string{"Origin": in.l.HTTPSURL, "Sec-Fetch-Site": "same-origin"}); r.status != http.StatusOK {
		t.Errorf("own origin: %d %s", r.status, tTrim(r.body))
	}
	if r := send("PUT", "/api/v1/profiles/corp_web", "application/yaml", tCorpProfile, nil); r.status != http.StatusNotFound {
		t.Errorf("YAML profile update of a missing profile: %d (want 404 from the store, not 415) %s", r.status, tTrim(r.body))
	}
	if r := send("POST", "/api/v1/profiles", "application/yaml", tCorpProfile, nil); r.status != http.StatusCreated {
		t.Errorf("YAML profile create: %d %s", r.status, tTrim(r.body))
	}
}
