package api

import (
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/web/apitypes"
)

// TestDecodeRefusesAmbiguousKeys: encoding/json matches field names
// case-insensitively and keeps the last of duplicate keys, so
// {"role":"viewer","ROLE":"admin"} decoded as admin while a proxy or an
// auditor reading the first key saw viewer. decode refuses such bodies,
// naming the key, at any depth; ordinary bodies still decode.
// decode is Handler.decode for the tests, with a cache of its own (the
// cache's reuse is TestFieldCache's).
func decode(r *http.Request, v any) error { return decodeWith(r, v, &fieldCache{}) }

// TestFieldCache: the cache gives jsonFields' map for a type, and the same
// map the second time.
func TestFieldCache(t *testing.T) {
	t.Parallel()
	var c fieldCache
	typ := reflect.TypeOf(struct {
		A string `json:"a"`
		B int
		c bool
	}{})
	first, second := c.fields(typ), c.fields(typ)
	if !maps.Equal(first, jsonFields(typ)) || len(first) != 2 {
		t.Fatalf("fields = %v, want %v", first, jsonFields(typ))
	}
	if reflect.ValueOf(first).Pointer() != reflect.ValueOf(second).Pointer() {
		t.Error("the second look-up made the map again")
	}
	if nilCache := (*fieldCache)(nil); !maps.Equal(nilCache.fields(typ), first) {
		t.Error("a nil cache does not fall back to jsonFields")
	}
}

func TestDecodeRefusesAmbiguousKeys(t *testing.T) {
	t.Parallel()
	refused := map[string]string{
		`{"name":"bot","kind":"machine","role":"viewer","ROLE":"admin"}`:      `"role" and "ROLE" differ only in case`,
		`{"name":"bot","kind":"machine","role":"viewer","role":"admin"}`:      `"role" appears twice`,
		`{"name":"bot","kind":"machine","ROLE":"admin"}`:                      `did you mean "role"`,
		`{"name":"bot","kind":"machine","scope":{"cas":["a"],"cas":["b"]}}`:   `scope: key "cas" appears twice`,
		`{"name":"bot","kind":"machine","scope":{"Profiles":["web_server"]}}`: `did you mean "profiles"`,
		`{"name":"bot","kind":"machine","Name":"admin"}`:                      `"name" and "Name" differ only in case`,
	}
	for body, want := range refused {
		var req apitypes.CreatePrincipalRequest
		err := decode(bodyRequest([]byte(body)), &req)
		if !errors.Is(err, errBadInput) {
			t.Errorf("%s: decode = %v (decoded %+v), want a bad-input error", body, err, req)
			continue
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %q does not say %q", body, err, want)
		}
	}

	var req apitypes.CreatePrincipalRequest
	ok := `{"name":"bot","kind":"machine","role":"issuer","scope":{"cas":["issuing"],"names":["*.svc.internal"]},"token":true}`
	if err := decode(bodyRequest([]byte(ok)), &req); err != nil {
		t.Fatalf("ordinary body refused: %v", err)
	}
	if req.Role != "issuer" || len(req.Scope.CAs) != 1 || !req.Token {
		t.Errorf("decoded %+v", req)
	}
	// Types that decode themselves (time.Time) and free-form values keep
	// working; only their object keys are checked for duplicates.
	var rv struct {
		At    time.Time      `json:"at"`
		Extra map[string]any `json:"extra"`
	}
	if err := decode(bodyRequest([]byte(`{"at":"2026-01-01T00:00:00Z","extra":{"A":1,"b":{"c":2}}}`)), &rv); err != nil {
		t.Errorf("time and map body refused: %v", err)
	}
	if err := decode(bodyRequest([]byte(`{"at":"2026-01-01T00:00:00Z","extra":{"k":1,"k":2}}`)), &rv); !errors.Is(err, errBadInput) {
		t.Errorf("duplicate key inside a map: %v, want a bad-input error", err)
	}
}

// BenchmarkCheckKeysSign checks the keys of a sign request's body, whose
// CSR is a long string with escaped newlines.
func BenchmarkCheckKeysSign(b *testing.B) {
	body, err := json.Marshal(apitypes.SignRequest{
		CSRPEM:  "-----BEGIN CERTIFICATE REQUEST-----\n" + strings.Repeat(strings.Repeat("A", 64)+"\n", 8) + "-----END CERTIFICATE REQUEST-----\n",
		Profile: "web_server", Tags: []string{"team:payments"},
	})
	if err != nil {
		b.Fatal(err)
	}
	var v apitypes.SignRequest
	if err := json.Unmarshal(body, &v); err != nil {
		b.Fatal(err)
	}
	fc := &fieldCache{}
	b.ReportAllocs()
	for b.Loop() {
		if err := checkKeys(body, &v, fc); err != nil {
			b.Fatal(err)
		}
	}
}
