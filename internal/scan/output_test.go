package scan

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/discovery"
)

func TestWriteTableAndJSON(t *testing.T) {
	t.Parallel()
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	obs := []discovery.Observation{{
		Address: "127.0.0.1:8443", Host: "ca.test", ObservedAt: at, Reachable: true, Protocol: "https", Encryption: discovery.EncImplicitTLS,
		Versions: []string{"TLS1.0", "TLS1.2"}, VersionsComplete: true, Negotiated: "TLS1.2", Suite: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
		ForwardSecrecy: discovery.FSAll, WeakSuites: true,
		Grade: &discovery.Grade{Letter: "B", Score: 91, RulesVersion: "r1", Reasons: []discovery.Reason{{Code: "tls10", Message: "TLS 1.0 is enabled: grade capped at B"}}},
		HSTS:  &discovery.HSTS{MaxAge: 31536000},
	}, {
		Address: "127.0.0.1:6379", ObservedAt: at, Reachable: true, Protocol: "redis", Encryption: discovery.EncNone,
		Findings: []discovery.Finding{{Code: "no-tls", Severity: discovery.SeverityCritical, Message: "Redis answers in plaintext."}},
	}, {
		Address: "10.0.0.1:443", ObservedAt: at, Error: "not in the scan allow-list",
	}, {
		Address: "127.0.0.1:993", ObservedAt: at, Reachable: true, Protocol: "imap", Encryption: discovery.EncImplicitTLS,
		Versions: []string{"TLS1.0", "TLS1.2"}, WeakSuites: true, DHBits: []int{2048},
		Protocols: []discovery.ProtocolDetail{{
			Version: "TLS1.0",
			Suites: []discovery.SuiteDetail{
				{Name: "TLS_RSA_WITH_3DES_EDE_CBC_SHA", KeyExchange: "RSA", Cipher: "3DES-CBC", Bits: 112, Weak: true},
				{Name: "TLS_RSA_WITH_RC4_128_SHA", KeyExchange: "RSA", Cipher: "RC4", Bits: 128, Weak: true},
			},
		}, {
			Version: "TLS1.2", ServerOrder: new(bool), Groups: []string{"x25519"},
			Suites: []discovery.SuiteDetail{
				{Name: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", KeyExchange: "ECDHE", Cipher: "AES-GCM", Bits: 128, Group: "x25519"},
				{Name: "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384", KeyExchange: "DHE", Cipher: "AES-GCM", Bits: 256, DHBits: 2048},
			},
		}},
	}}
	var b bytes.Buffer
	if err := WriteTable(&b, obs); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"ca.test:8443 (127.0.0.1:8443)\n", "speaks:      https\n", "encrypted (TLS from the first byte)",
		"grade:       B (score 91, rules r1)\n", "- TLS 1.0 is enabled: grade capped at B\n", "TLS1.0, TLS1.2 (all versions tried)",
		"weak cipher suites accepted", "HSTS:        max-age 31536000 s\n",
		"127.0.0.1:6379\n", "NOT encrypted: plaintext only", "findings:    [critical] Redis answers in plaintext.\n",
		"10.0.0.1:443\n  reachable:   no\n  error:       not in the scan allow-list\n",
		"  suites:      TLS1.0: 2 suites (RSA 2; 3DES-CBC, RC4)\n" +
			"                 weak: TLS_RSA_WITH_3DES_EDE_CBC_SHA, TLS_RSA_WITH_RC4_128_SHA\n" +
			"               TLS1.2: 2 suites (ECDHE 1, DHE 1 at 2048 bits; AES-GCM; client order; groups x25519)\n" +
			"               (the enumeration stopped early: only the suites seen)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	b.Reset()
	if err := WriteJSON(&b, obs); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Endpoints) != 4 || back.Endpoints[0].Grade.Letter != "B" || back.Endpoints[1].Encryption != discovery.EncNone {
		t.Errorf("JSON round trip: %+v", back)
	}
	if !reflect.DeepEqual(back.Endpoints[3].Protocols, obs[3].Protocols) || !slices.Equal(back.Endpoints[3].DHBits, []int{2048}) {
		t.Errorf("JSON protocols %+v, DH %v: want %+v", back.Endpoints[3].Protocols, back.Endpoints[3].DHBits, obs[3].Protocols)
	}
	for _, key := range []string{`"protocols": [`, `"server_order": false`, `"key_exchange": "DHE"`, `"dh_bits": 2048`, `"weak": true`, `"groups": [`} {
		if !strings.Contains(b.String(), key) {
			t.Errorf("JSON lacks %s:\n%s", key, b.String())
		}
	}
	if strings.Contains(b.String(), `"protocols": null`) {
		t.Error("an observation without protocols writes protocols: null")
	}
	b.Reset()
	if err := WriteJSON(&b, nil); err != nil || !strings.Contains(b.String(), `"endpoints": []`) {
		t.Errorf("no observations: %q, %v", b.String(), err)
	}
}
