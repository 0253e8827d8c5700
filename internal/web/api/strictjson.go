package api

import (
	"bytes"
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
)

// maxJSONDepth bounds how deeply checkKeys follows nested objects and
// arrays; no request type nests anywhere near it.
const maxJSONDepth = 32

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// checkKeys reads the JSON in data against the type of v and refuses what
// encoding/json would quietly accept but another parser (a proxy, a WAF,
// an audit reader) might read differently: a key given twice in one object
// (encoding/json keeps the last) and a key that names a field only when
// case is ignored ("ROLE" for "role"). It checks keys only; the decoder
// checks values.
// fc, when not nil, keeps each type's field map (jsonFields) once made.
func checkKeys(data []byte, v any, fc *fieldCache) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return walkKeys(dec, reflect.TypeOf(v), "", 0, fc)
}

// fieldCache keeps jsonFields per type, for a Handler: a request body's
// types are few and fixed, and reflecting over them again cost every
// request a few microseconds.
type fieldCache struct {
	m sync.Map // reflect.Type → map[string]reflect.Type, never changed once stored
}

func (c *fieldCache) fields(t reflect.Type) map[string]reflect.Type {
	if c == nil {
		return jsonFields(t)
	}
	if f, ok := c.m.Load(t); ok {
		return f.(map[string]reflect.Type)
	}
	f, _ := c.m.LoadOrStore(t, jsonFields(t))
	return f.(map[string]reflect.Type)
}

// walkKeys reads one value from dec; t is the Go type it will decode into
// (nil: anything, keys are only checked for duplicates).
func walkKeys(dec *json.Decoder, t reflect.Type, path string, depth int, fc *fieldCache) error {
	if depth > maxJSONDepth {
		return fmt.Errorf("%s: nested too deeply", where(path))
	}
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t != nil && (reflect.PointerTo(t).Implements(jsonUnmarshaler) || reflect.PointerTo(t).Implements(textUnmarshaler)) {
		t = nil // decoded by its own method: check duplicates only
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
				fields = fc.fields(t)
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
			folded := strings.ToLower(key)
			if prev, dup := seen[folded]; dup {
				if prev == key {
					return fmt.Errorf("%s: key %q appears twice", where(path), key)
				}
				return fmt.Errorf("%s: keys %q and %q differ only in case", where(path), prev, key)
			}
			seen[folded] = key
			next := elem
			if fields != nil {
				ft, ok := fields[key]
				if !ok {
					for name := range fields {
						if strings.EqualFold(name, key) {
							return fmt.Errorf("%s: unknown field %q (did you mean %q? field names are case-sensitive)", where(path), key, name)
						}
					}
					// Unknown fields are the decoder's to refuse.
				}
				next = ft
			}
			if err := walkKeys(dec, next, path+"."+key, depth+1, fc); err != nil {
				return err
			}
		}
	case '[':
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for i := 0; dec.More(); i++ {
			if err := walkKeys(dec, elem, fmt.Sprintf("%s[%d]", path, i), depth+1, fc); err != nil {
				return err
			}
		}
	}
	_, err = dec.Token() // the closing delimiter
	return err
}

// jsonFields maps the JSON names encoding/json gives t's fields (embedded
// structs flattened) to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	var add func(t reflect.Type, depth int)
	add = func(t reflect.Type, depth int) {
		if depth > 4 {
			return
		}
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, _, _ := strings.Cut(tag, ",")
			ft := f.Type
			if f.Anonymous && name == "" {
				for ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if ft.Kind() == reflect.Struct {
					add(ft, depth+1)
					continue
				}
			}
			if !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			if _, ok := out[name]; !ok {
				out[name] = f.Type
			}
		}
	}
	add(t, 0)
	return out
}

func where(path string) string {
	if path == "" {
		return "request body"
	}
	return "request body field " + strings.TrimPrefix(path, ".")
}
