package cli

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/web/apitypes"
)

func TestScanCommands(t *testing.T) {
	t.Parallel()
	seen := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	ep := apitypes.Endpoint{
		Address: "db.internal:5432", IP: "10.0.0.5:5432", Encryption: "implicit-tls", Negotiated: "TLS1.3", Versions: []string{"TLS1.3"},
		Match:    &apitypes.ScanMatch{Status: "revoked", Serial: "0a1b", Subject: "CN=db.internal", Source: "issued", NotAfter: seen.Add(24 * time.Hour)},
		LastSeen: seen, FirstSeen: seen, Findings: []apitypes.ScanFinding{}, Suites: []string{},
		Protocols: []apitypes.ScanProtocol{{
			Version: "TLS1.0", Summary: "1 suite (RSA 1; 3DES-CBC)",
			Suites: []apitypes.ScanSuite{{Name: "TLS_RSA_WITH_3DES_EDE_CBC_SHA", KeyExchange: "RSA", Cipher: "3DES-CBC", Bits: 112, Weak: true}},
		}, {
			Version: "TLS1.3", Summary: "1 suite (AES-GCM; groups x25519)", Groups: []string{"x25519"},
			Suites: []apitypes.ScanSuite{{Name: "TLS_AES_128_GCM_SHA256", KeyExchange: "TLS1.3", Cipher: "AES-GCM", Bits: 128, Group: "x25519"}},
		}},
	}
	f := newFakeAPI(t, map[string]http.HandlerFunc{
		"GET /api/v1/scan/endpoints": func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Get("after") == "" {
				writeTestJSON(w, 200, apitypes.EndpointList{Endpoints: []apitypes.Endpoint{ep}, Next: ep.Address})
				return
			}
			other := ep
			other.Address, other.Encryption, other.Match, other.Negotiated = "mail.internal:25", "none", nil, ""
			writeTestJSON(w, 200, apitypes.EndpointList{Endpoints: []apitypes.Endpoint{other}})
		},
		"GET /api/v1/scan/endpoint": func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Get("address") != ep.Address {
				writeTestJSON(w, 404, apitypes.Error{Error: "not found", Detail: "store: not found: endpoint"})
				return
			}
			writeTestJSON(w, 200, apitypes.EndpointDetail{Endpoint: ep, Events: []apitypes.EndpointEvent{{Kind: "appeared", At: seen, To: "implicit-tls"}},
				ServedAt: []apitypes.ServedAt{{Endpoint: "db2.internal:5432", LastSeen: seen}}})
		},
		"POST /api/v1/scan/run": func(w http.ResponseWriter, r *http.Request) {
			writeTestJSON(w, 200, apitypes.ScanResult{Targets: 2, Reachable: 1, Changes: 1, Alerts: 1, Unfinished: 1})
		},
	})
	code, out, errOut := run(t, f.env, "scan", "endpoints", "--status", "revoked")
	if code != 0 || !strings.Contains(out, "db.internal:5432") || !strings.Contains(out, "revoked") || !strings.Contains(out, "mail.internal:25") {
		t.Errorf("scan endpoints: exit %d\n%s%s", code, out, errOut)
	}
	if q := f.requests()[0].query; !strings.Contains(q, "status=revoked") {
		t.Errorf("scan endpoints sent %q", q)
	}
	code, out, _ = run(t, f.env, "scan", "endpoints", "--json")
	var list apitypes.EndpointList
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list.Endpoints) != 2 {
		t.Errorf("scan endpoints --json: exit %d\n%s", code, out)
	}
	code, out, errOut = run(t, f.env, "scan", "show", "db.internal:5432")
	for _, want := range []string{"Status:", "revoked", "Also served at:", "db2.internal:5432", "History", "appeared",
		"\nTLS1.0: 1 suite (RSA 1; 3DES-CBC)\nSUITE ", "TLS_RSA_WITH_3DES_EDE_CBC_SHA  RSA           3DES-CBC  112   weak\n",
		"\nTLS1.3: 1 suite (AES-GCM; groups x25519)\n", "TLS_AES_128_GCM_SHA256  x25519        AES-GCM  128   -\n",
		"(the enumeration stopped early"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("scan show lacks %q: exit %d\n%s%s", want, code, out, errOut)
		}
	}
	code, out, errOut = run(t, f.env, "scan", "run", "10.0.0.0/28:443", "db.internal:5432")
	if code != 0 || !strings.HasPrefix(out, "2 targets scanned, 1 reachable") || !strings.Contains(out, "1 target not finished") {
		t.Errorf("scan run: exit %d\n%s%s", code, out, errOut)
	}
	reqs := f.requests()
	var sent apitypes.ScanRequest
	if err := json.Unmarshal(reqs[len(reqs)-1].body, &sent); err != nil || strings.Join(sent.Targets, " ") != "10.0.0.0/28:443 db.internal:5432" {
		t.Errorf("scan run sent %s (%v)", reqs[len(reqs)-1].body, err)
	}
	if code, _, errOut := run(t, f.env, "scan", "show"); code != exitUsage || !strings.Contains(errOut, "HOST:PORT") {
		t.Errorf("scan show without an address: exit %d %s", code, errOut)
	}
}

func TestPrintEncryptionKPIs(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	k := &apitypes.ScanKPIs{Endpoints: 4, Encrypted: 3, EncryptionKnown: 4, EncryptedShare: 0.75, Remediated: 2, MeanTimeToRemediate: 7200,
		Unmanaged: 1, Grades: map[string]int{"A": 2, "F": 1}, ByEncryption: map[string]int{"implicit-tls": 3, "none": 1}}
	if err := printEncryptionKPIs(&b, k); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Encryption KPIs of the scanned endpoints", "Scanned endpoints       4 ", "75.0%", "3 of 4", "TLS 1.2+ only", "n/a",
		"2h0m0s", "A 2, F 1", "none 1", "Unmanaged certificates"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("KPIs lack %q:\n%s", want, b.String())
		}
	}
}

// TestScanOutputEscapesServerText: what a scanned peer chose (a
// certificate's subject, a finding quoting it, an error) reaches the
// terminal with its control characters escaped, in tables and in the
// fields of scan show, whatever the server stored.
func TestScanOutputEscapesServerText(t *testing.T) {
	t.Parallel()
	hostile := "evil\x1b]0;owned\x07\x1b[2J\r\nFAKE: grade A+\u202e"
	ep := apitypes.Endpoint{
		Address: "db.internal:5432", IP: "10.0.0.5:5432", Encryption: "implicit-tls", Error: hostile,
		Match:    &apitypes.ScanMatch{Status: "unmanaged", Serial: "0a1b", Subject: "CN=" + hostile, Source: "discovered"},
		Findings: []apitypes.ScanFinding{{Code: "certificate-name-mismatch", Severity: "warning", Message: "it names " + hostile}},
	}
	f := newFakeAPI(t, map[string]http.HandlerFunc{
		"GET /api/v1/scan/endpoints": func(w http.ResponseWriter, r *http.Request) {
			writeTestJSON(w, 200, apitypes.EndpointList{Endpoints: []apitypes.Endpoint{ep}})
		},
		"GET /api/v1/scan/endpoint": func(w http.ResponseWriter, r *http.Request) {
			writeTestJSON(w, 200, apitypes.EndpointDetail{Endpoint: ep, Events: []apitypes.EndpointEvent{{Kind: "certificate_changed", From: hostile, To: hostile}}})
		},
	})
	for _, args := range [][]string{{"scan", "show", "db.internal:5432"}, {"scan", "endpoints"}} {
		code, out, errOut := run(t, f.env, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d\n%s%s", args, code, out, errOut)
		}
		if strings.ContainsAny(out, "\x1b\x07\r\u202e") || strings.Contains(out, "\nFAKE") {
			t.Errorf("%v: control characters reach the terminal:\n%q", args, out)
		}
	}
	_, out, _ := run(t, f.env, "scan", "show", "db.internal:5432")
	if !strings.Contains(out, `evil\x1b]0;owned\a\x1b[2J\r\nFAKE: grade A+\u202e`) {
		t.Errorf("scan show does not show the text escaped:\n%s", out)
	}
}
