package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
)

// checkKeysByToken is the strict-key check as it was first written, on
// encoding/json's Token API: the reference FuzzCheckKeysMatchesToken
// holds checkKeys to.
func checkKeysByToken(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return walkKeys(dec, reflect.TypeOf(v), "", 0)
}

// walkKeys reads one value from dec; t is the Go type it will decode into
// (nil: anything, keys are only checked for duplicates).
func walkKeys(dec *json.Decoder, t reflect.Type, path string, depth int) error {
	t, err := valueType(t, path, depth)
	if err != nil {
		return err
	}
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	delim, ok := tok.(json.Delim)
	if !ok {
		return nil // a scalar
	}
	switch delim {
	case '{':
		var fields map[string]reflect.Type
		var elem reflect.Type
		if t != nil {
			switch t.Kind() {
			case reflect.Struct:
				fields = jsonFields(t)
			case reflect.Map:
				elem = t.Elem()
			}
		}
		seen := map[string]string{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return err
			}
			key, _ := kt.(string)
			next, err := checkKey(seen, fields, elem, key, path)
			if err != nil {
				return err
			}
			if err := walkKeys(dec, next, path+"."+key, depth+1); err != nil {
				return err
			}
		}
	case '[':
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for i := 0; dec.More(); i++ {
			if err := walkKeys(dec, elem, fmt.Sprintf("%s[%d]", path, i), depth+1); err != nil {
				return err
			}
		}
	}
	_, err = dec.Token() // the closing delimiter
	return err
}

// FuzzCheckKeysMatchesToken: on every body a request type decodes, the
// strict-key check refuses exactly what the Token-based walker refused,
// with the same message.
func FuzzCheckKeysMatchesToken(f *testing.F) {
	for _, s := range []string{
		`{"csr_pem":"x","profile":"web_server"}`, `{"csr_pem":"x","csr_pem":"y"}`, `{"Profile":"a","profile":"b"}`,
		`{"PROFILE":"a"}`, `{"tags":["a","b"],"validity_days":3}`, `{"prof\u0069le":"a","profile":"b"}`,
		`{"name":"a","name_constraints":{"permitted_dns":["x"],"permitted_dns":["y"]}}`,
		`{"selector":{"ca":"a","CA":"b"}}`, "{\"a\xff\":1,\"a\xfe\":2}", `{"extra":{"k":1,"k":2}}`,
		"{\"extra\":{\"a\xff\":1,\"a\xfe\":2}}", `{"extra":{"K\u0041":1,"ka":2}}`, `{"List":[{"a":1},{"b":1,"B":2}]}`,
		` { "profile" : "a" , "tags" : [ ] } `, `{"csr_pem":"a\"b\\","profile":"\\\"x\u0022"}`,
		`{"csr_pem":"-----BEGIN\nx\n-----END\n","csr_pem":"y"}`, `{"name":"a"}}`, `{}`, `[]`, `null`, `"x"`, `1`,
	} {
		f.Add([]byte(s))
	}
	// The API's request types, and two that take any key, so that
	// duplicates among arbitrary keys reach the check.
	types := append(requestTypes(), &map[string]any{}, &struct {
		Name  string         `json:"name"`
		Extra map[string]any `json:"extra"`
		List  []map[string]int
	}{})
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, proto := range types {
			v := reflect.New(reflect.TypeOf(proto).Elem()).Interface()
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.DisallowUnknownFields()
			if dec.Decode(v) != nil || dec.More() {
				continue
			}
			got, want := checkKeys(body, v, &fieldCache{}), checkKeysByToken(body, v)
			if (got == nil) != (want == nil) || got != nil && got.Error() != want.Error() {
				t.Fatalf("%T %q: checkKeys %v, the Token walker %v", v, body, got, want)
			}
		}
	})
}
