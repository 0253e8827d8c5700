package api

import (
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"unicode/utf8"
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
//
// data must be JSON that encoding/json has decoded into v without error;
// only its first value is read. fc, when not nil, keeps each type's field
// map (jsonFields) once made.
func checkKeys(data []byte, v any, fc *fieldCache) error {
	w := keyWalker{data: data, fc: fc}
	return w.value(reflect.TypeOf(v), "", 0)
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

// keyWalker walks JSON that encoding/json has already decoded without
// error (so its first value is well-formed), reading each object's keys
// and skipping everything else. encoding/json's Token API did the same at
// several times the cost: it builds and drops an error for the delimiter
// after every string it reads.
type keyWalker struct {
	data []byte
	i    int
	fc   *fieldCache
}

func (w *keyWalker) space() {
	for w.i < len(w.data) {
		switch w.data[w.i] {
		case ' ', '\t', '\n', '\r':
			w.i++
		default:
			return
		}
	}
}

// peek returns the next byte after white space, or 0 at the end.
func (w *keyWalker) peek() byte {
	w.space()
	if w.i >= len(w.data) {
		return 0
	}
	return w.data[w.i]
}

var errKeysTruncated = errors.New("request body: JSON ends early")

// str reads the string at w.i and returns its value as encoding/json reads
// it (escapes resolved, invalid UTF-8 replaced).
func (w *keyWalker) str() (string, error) {
	if w.peek() != '"' {
		return "", errKeysTruncated
	}
	start, plain := w.i, true
	for w.i++; w.i < len(w.data); w.i++ {
		switch c := w.data[w.i]; {
		case c == '\\':
			plain = false
			w.i++
		case c == '"':
			w.i++
			raw := w.data[start:w.i]
			if plain && utf8.Valid(raw) {
				return string(raw[1 : len(raw)-1]), nil
			}
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return "", fmt.Errorf("request body: %w", err)
			}
			return s, nil
		}
	}
	return "", errKeysTruncated
}

// skipStr steps over a string value: no check reads one, and unquoting a
// long escaped value (a PEM block's "\n"s) cost a sign request a few
// microseconds. The data is well-formed, so the first unescaped quote
// ends the string.
func (w *keyWalker) skipStr() error {
	if w.peek() != '"' {
		return errKeysTruncated
	}
	for w.i++; w.i < len(w.data); w.i++ {
		switch w.data[w.i] {
		case '\\':
			w.i++
		case '"':
			w.i++
			return nil
		}
	}
	return errKeysTruncated
}

// value walks one value; t is the Go type it will decode into (nil:
// anything, keys are only checked for duplicates).
func (w *keyWalker) value(t reflect.Type, path string, depth int) error {
	t, err := valueType(t, path, depth)
	if err != nil {
		return err
	}
	switch w.peek() {
	case 0:
		return errKeysTruncated
	case '"':
		return w.skipStr()
	case '{':
		w.i++
		var fields map[string]reflect.Type
		var elem reflect.Type
		if t != nil {
			switch t.Kind() {
			case reflect.Struct:
				fields = w.fc.fields(t)
			case reflect.Map:
				elem = t.Elem()
			}
		}
		seen := map[string]string{}
		for {
			switch w.peek() {
			case '}':
				w.i++
				return nil
			case ',':
				w.i++
			}
			key, err := w.str()
			if err != nil {
				return err
			}
			if w.peek() != ':' {
				return errKeysTruncated
			}
			w.i++
			next, err := checkKey(seen, fields, elem, key, path)
			if err != nil {
				return err
			}
			if err := w.value(next, path+"."+key, depth+1); err != nil {
				return err
			}
		}
	case '[':
		w.i++
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for i := 0; ; i++ {
			switch w.peek() {
			case ']':
				w.i++
				return nil
			case ',':
				w.i++
			}
			if err := w.value(elem, fmt.Sprintf("%s[%d]", path, i), depth+1); err != nil {
				return err
			}
		}
	default: // a number, true, false or null
		for w.i < len(w.data) && !strings.ContainsRune(",:]} \t\n\r", rune(w.data[w.i])) {
			w.i++
		}
		return nil
	}
}

// valueType is the type whose keys a value at path and depth is checked
// against: t without pointers, or nil (duplicates only) when t decodes
// itself; an error when the value is nested too deeply.
func valueType(t reflect.Type, path string, depth int) (reflect.Type, error) {
	if depth > maxJSONDepth {
		return nil, fmt.Errorf("%s: nested too deeply", where(path))
	}
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t != nil && (reflect.PointerTo(t).Implements(jsonUnmarshaler) || reflect.PointerTo(t).Implements(textUnmarshaler)) {
		return nil, nil // decoded by its own method: check duplicates only
	}
	return t, nil
}

// checkKey checks one key of the object at path: seen holds the object's
// keys so far by their lower case; fields (an object decoded into a
// struct) or elem (into a map) give the type of the key's value, which it
// returns.
func checkKey(seen map[string]string, fields map[string]reflect.Type, elem reflect.Type, key, path string) (reflect.Type, error) {
	folded := strings.ToLower(key)
	if prev, dup := seen[folded]; dup {
		if prev == key {
			return nil, fmt.Errorf("%s: key %q appears twice", where(path), key)
		}
		return nil, fmt.Errorf("%s: keys %q and %q differ only in case", where(path), prev, key)
	}
	seen[folded] = key
	if fields == nil {
		return elem, nil
	}
	ft, ok := fields[key]
	if !ok {
		for name := range fields {
			if strings.EqualFold(name, key) {
				return nil, fmt.Errorf("%s: unknown field %q (did you mean %q? field names are case-sensitive)", where(path), key, name)
			}
		}
		// Unknown fields are the decoder's to refuse.
	}
	return ft, nil
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
