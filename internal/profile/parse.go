package profile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"reflect"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// MaxInput bounds a profile definition accepted by Parse.
const MaxInput = 64 << 10

// ErrTooLarge is returned by Parse for input over MaxInput bytes.
var ErrTooLarge = errors.New("profile: definition too large")

// ErrMalformed is returned by Parse for input that is not one well-formed
// YAML or JSON document: the caller's mistake, with the parser's reason.
var ErrMalformed = errors.New("profile: malformed definition")

// maxDepth is deeper than any profile field; it stops a hostile document
// from recursing the strict-field walk.
const maxDepth = 8

// Parse reads one profile definition, JSON when the first non-space byte is
// '{' and YAML otherwise. Decoding is strict: unknown or duplicate fields,
// values of the wrong type, YAML anchors, aliases and tags, and trailing
// documents are errors, reported as *FieldError where a field is at fault.
// The profile is then normalised (names trimmed and lower-cased, CIDRs in
// canonical form, key_export defaulting to "once", max_sans to
// DefaultMaxSANs, Builtin cleared) and validated.
func Parse(data []byte) (*Profile, error) {
	return parse(data, true)
}

// parseListed parses a stored definition for listing only: it skips the EKU
// policy, so a profile stored before that policy existed (say with
// ocsp_signing) still shows up to be fixed or deleted, while Catalog.Get,
// and so issuance, refuses it.
func parseListed(data []byte) (*Profile, error) {
	return parse(data, false)
}

func parse(data []byte, policy bool) (*Profile, error) {
	if len(data) > MaxInput {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), MaxInput)
	}
	var (
		p   *Profile
		err error
	)
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) > 0 && t[0] == '{' {
		p, err = parseJSON(data)
	} else {
		p, err = parseYAML(data)
	}
	if err != nil {
		return nil, err
	}
	p.normalize()
	if fe := p.validate(policy); fe != nil {
		return nil, fe
	}
	return p, nil
}

func parseJSON(data []byte) (*Profile, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := walkJSON(dec, reflect.TypeFor[Profile](), "", 0); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: trailing data after the JSON object", ErrMalformed)
	}

	// The walk has vetted every field; the strict decoder is the backstop.
	var p Profile
	dec = json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
			return nil, fieldErr(te.Field, "want %s, got JSON %s", te.Type, te.Value)
		}
		return nil, fmt.Errorf("%w: decode JSON: %w", ErrMalformed, err)
	}
	return &p, nil
}

func jsonSyntaxErr(err error) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("%w: decode JSON: %w", ErrMalformed, err)
}

// walkJSON reads one value from dec and checks it against t: known and
// unique field names (case-sensitive, unlike encoding/json) and the JSON
// kind of every value.
func walkJSON(dec *json.Decoder, t reflect.Type, path string, depth int) error {
	if depth > maxDepth {
		return fieldErr(path, "nested too deeply")
	}
	tok, err := dec.Token()
	if err != nil {
		return jsonSyntaxErr(err)
	}
	if tok == nil {
		return nil // null leaves the field at its zero value
	}
	switch t.Kind() {
	case reflect.Struct:
		if tok != json.Delim('{') {
			return fieldErr(path, "want an object")
		}
		fields := fieldTypes(t, "json")
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return jsonSyntaxErr(err)
			}
			key, _ := kt.(string)
			fp := joinPath(path, key)
			ft, ok := fields[key]
			if !ok {
				return fieldErr(fp, "unknown field")
			}
			if seen[key] {
				return fieldErr(fp, "duplicate field")
			}
			seen[key] = true
			if err := walkJSON(dec, ft, fp, depth+1); err != nil {
				return err
			}
		}
	case reflect.Slice:
		if tok != json.Delim('[') {
			return fieldErr(path, "want an array")
		}
		for i := 0; dec.More(); i++ {
			if err := walkJSON(dec, t.Elem(), fmt.Sprintf("%s[%d]", path, i), depth+1); err != nil {
				return err
			}
		}
	case reflect.String:
		if _, ok := tok.(string); !ok {
			return fieldErr(path, "want a string")
		}
		return nil
	case reflect.Bool:
		if _, ok := tok.(bool); !ok {
			return fieldErr(path, "want true or false")
		}
		return nil
	case reflect.Int:
		n, ok := tok.(json.Number)
		if !ok {
			return fieldErr(path, "want an integer")
		}
		if _, err := strconv.ParseInt(string(n), 10, 32); err != nil {
			return fieldErr(path, "%s is not a 32-bit integer", n)
		}
		return nil
	default:
		return fieldErr(path, "unsupported field type %s", t)
	}
	// Consume the closing '}' or ']'.
	if _, err := dec.Token(); err != nil {
		return jsonSyntaxErr(err)
	}
	return nil
}

func parseYAML(data []byte) (*Profile, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: empty definition", ErrMalformed)
		}
		return nil, fmt.Errorf("%w: decode YAML: %w", ErrMalformed, err)
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: more than one YAML document", ErrMalformed)
	}
	if len(doc.Content) != 1 {
		return nil, fmt.Errorf("%w: empty definition", ErrMalformed)
	}
	if err := walkYAML(doc.Content[0], reflect.TypeFor[Profile](), "", 0); err != nil {
		return nil, err
	}

	var p Profile
	dec = yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("%w: decode YAML: %w", ErrMalformed, err)
	}
	return &p, nil
}

// walkYAML checks a YAML node against t, as walkJSON does for JSON. Anchors,
// aliases, merge keys and explicit tags are refused: a profile is small, and
// each is a way to make the document mean something other than it reads.
func walkYAML(n *yaml.Node, t reflect.Type, path string, depth int) error {
	if depth > maxDepth {
		return fieldErr(path, "nested too deeply")
	}
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		return fieldErr(path, "YAML anchors and aliases are not supported")
	}
	if n.Style&yaml.TaggedStyle != 0 {
		return fieldErr(path, "explicit YAML tags are not supported")
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return fieldErr(path, "want a mapping")
		}
		fields := fieldTypes(t, "yaml")
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode || k.Style&yaml.TaggedStyle != 0 || k.Anchor != "" {
				return fieldErr(path, "mapping keys must be plain field names")
			}
			fp := joinPath(path, k.Value)
			ft, ok := fields[k.Value]
			if !ok {
				return fieldErr(fp, "unknown field")
			}
			if seen[k.Value] {
				return fieldErr(fp, "duplicate field")
			}
			seen[k.Value] = true
			if err := walkYAML(n.Content[i+1], ft, fp, depth+1); err != nil {
				return err
			}
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return fieldErr(path, "want a sequence")
		}
		for i, c := range n.Content {
			if err := walkYAML(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), depth+1); err != nil {
				return err
			}
		}
	case reflect.String:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
			return fieldErr(path, "want a string (quote values such as numbers)")
		}
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
			return fieldErr(path, "want true or false")
		}
	case reflect.Int:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
			return fieldErr(path, "want an integer")
		}
		if _, err := strconv.ParseInt(n.Value, 0, 32); err != nil {
			return fieldErr(path, "%s is not a 32-bit integer", n.Value)
		}
	default:
		return fieldErr(path, "unsupported field type %s", t)
	}
	return nil
}

// fieldTypes maps the names a struct's fields have under a tag key ("json"
// or "yaml") to their types; fields tagged "-" are absent.
func fieldTypes(t reflect.Type, key string) map[string]reflect.Type {
	out := make(map[string]reflect.Type, t.NumField())
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get(key), ",")
		if name == "" || name == "-" {
			continue
		}
		out[name] = f.Type
	}
	return out
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// normalize puts a decoded profile in canonical form, so that Validate sees
// what will be stored and Marshal followed by Parse gives back an equal value.
func (p *Profile) normalize() {
	p.Name = lowerASCII(strings.TrimSpace(p.Name))
	p.Description = strings.TrimSpace(p.Description)
	if len(p.Keys) == 0 {
		p.Keys = nil
	}
	for i := range p.Keys {
		a := strings.TrimSpace(p.Keys[i].Algorithm)
		for _, f := range keyFamilies() {
			if strings.EqualFold(a, f.name) {
				a = f.name
			}
		}
		p.Keys[i].Algorithm = a
	}
	p.KeyUsage = normList(p.KeyUsage, lowerASCII)
	p.ExtKeyUsage = normList(p.ExtKeyUsage, lowerASCII)
	p.SubjectFields = normList(p.SubjectFields, lowerASCII)
	p.Names.DNS.Suffixes = normList(p.Names.DNS.Suffixes, lowerASCII)
	p.Names.IP.Ranges = normList(p.Names.IP.Ranges, func(s string) string {
		if pfx, err := netip.ParsePrefix(s); err == nil {
			return pfx.String()
		}
		return s
	})
	p.Names.Email.Domains = normList(p.Names.Email.Domains, lowerASCII)
	p.Names.URI.Prefixes = normList(p.Names.URI.Prefixes, func(s string) string { return s })
	if p.Names.MaxSANs == 0 {
		p.Names.MaxSANs = DefaultMaxSANs
	}
	p.KeyExport = lowerASCII(strings.TrimSpace(p.KeyExport))
	if p.KeyExport == "" {
		p.KeyExport = KeyExportOnce
	}
	p.Builtin = false
}

// normList trims every entry, applies f, and turns an empty list into nil.
func normList(list []string, f func(string) string) []string {
	if len(list) == 0 {
		return nil
	}
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = f(strings.TrimSpace(s))
	}
	return out
}
