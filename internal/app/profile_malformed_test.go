package app

import (
	"net/http"
	"strings"
	"testing"
)

// TestMalformedProfileIsBadRequest: a profile definition that is not
// well-formed YAML or JSON is the caller's mistake, answered 400 with the
// parser's reason (not 500), on create and update, and nothing is stored.
func TestMalformedProfileIsBadRequest(t *testing.T) {
	t.Parallel()
	in := tNewServer(t, "")
	if r := in.raw("POST", "/api/v1/profiles", in.bearer(), strings.NewReader(tCorpProfile)); r.status != http.StatusCreated {
		t.Fatalf("create corp_web: status %d: %s", r.status, tTrim(r.body))
	}
	bad := map[string]string{
		// A block item under a flow list: "did not find expected key".
		"YAML flow list then block item": strings.Replace(tCorpProfile, "ext_key_usage: [server_auth]", "ext_key_usage: [server_auth]\n  - client_auth", 1),
		"unclosed YAML flow list":        "name: corp_x\nkeys: [{algorithm: ECDSA\n",
		"JSON syntax":                    `{"name" "corp_x"}`,
		"two documents":                  tCorpProfile + "---\n" + tCorpProfile,
	}
	for name, def := range bad {
		for _, m := range []struct{ method, path string }{{"POST", "/api/v1/profiles"}, {"PUT", "/api/v1/profiles/corp_web"}} {
			r := in.raw(m.method, m.path, in.bearer(), strings.NewReader(def))
			if r.status != http.StatusBadRequest {
				t.Errorf("%s %s with %s: status %d, want 400: %s", m.method, m.path, name, r.status, tTrim(r.body))
				continue
			}
			if e := r.apiErr(t); !strings.Contains(e.Detail, "malformed") {
				t.Errorf("%s %s with %s: detail %q does not say the definition is malformed", m.method, m.path, name, e.Detail)
			}
		}
	}
	// corp_web is unchanged, and nothing else was created.
	r := in.raw("GET", "/api/v1/profiles/corp_x", in.bearer(), nil)
	if r.status != http.StatusNotFound {
		t.Errorf("corp_x after refused creates: status %d, want 404", r.status)
	}
}
