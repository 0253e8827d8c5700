package acmeapi

import (
	"testing"

	"github.com/certwright/certwright/internal/acme"
)

// FuzzDecodePayloads feeds one JWS payload to the decoding of every
// request that carries one (newAccount, account update, newOrder,
// finalize, revokeCert, authorization and challenge updates). A refusal is
// always a malformed problem (400), never a panic or an internal error.
func FuzzDecodePayloads(f *testing.F) {
	for _, s := range []string{
		`{"termsOfServiceAgreed":true,"contact":["mailto:ops@example.com"]}`,
		`{"contact":["ops@example.com"],"onlyReturnExisting":true,"externalAccountBinding":null}`,
		`{"contact":null,"status":"deactivated"}`,
		`{"identifiers":[{"type":"dns","value":"step.example.test"}],"notBefore":"0001-01-01T00:00:00Z","notAfter":"0001-01-01T00:00:00Z"}`,
		`{"identifiers":[{"type":"ip","value":"127.0.0.1"}],"replaces":"aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"}`,
		`{"csr":"MIIBIjCByQIBADAZMRcwFQYDVQQDEw5hLmV4YW1wbGUudGVzdA=="}`,
		`{"certificate":"MIIB","reason":4}`, `{"certificate":"","reason":-1}`, `{"reason":"1"}`,
		`{"identifiers":{}}`, `[]`, `null`, ``, ` {`, `{"identifiers":[{"type":1}]}`, "{\"a\":\"\\ud800\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		targets := []any{
			&newAccountPayload{}, &accountUpdatePayload{}, &newOrderPayload{}, &finalizePayload{},
			&revokePayload{}, &statusPayload{},
		}
		for _, v := range targets {
			err := decodePayload(payload, v)
			if err != nil {
				wantMalformed(t, err)
				continue
			}
			switch p := v.(type) {
			case *finalizePayload:
				if b, err := decodeB64("csr", p.CSR); err != nil {
					wantMalformed(t, err)
				} else if len(b) == 0 {
					t.Fatal("decodeB64 returned nothing without an error")
				}
			case *revokePayload:
				if _, err := decodeB64("certificate", p.Certificate); err != nil {
					wantMalformed(t, err)
				}
			}
		}
	})
}

func wantMalformed(t *testing.T, err error) {
	t.Helper()
	p := acme.AsProblem(err)
	if p == nil || p.Type != acme.ErrMalformed || p.Status() != 400 {
		t.Fatalf("error %v is not a malformed problem", err)
	}
}
