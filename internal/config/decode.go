package config

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/certwright/certwright/internal/yamlconf"
)

// maxDecodeErrors is how many problems one decode reports.
const maxDecodeErrors = 20

// FieldError is a setting that breaks a rule. Field is the dotted key
// (alerts.channels[0].url); File and Line, when known, say where it was
// written. It matches ErrInvalid.
type FieldError struct {
	File  string
	Line  int
	Field string
	Msg   string
}

func (e *FieldError) Error() string {
	loc := ""
	switch {
	case e.File != "" && e.Line > 0:
		loc = fmt.Sprintf("%s:%d: ", e.File, e.Line)
	case e.File != "":
		loc = e.File + ": "
	}
	return ErrInvalid.Error() + ": " + loc + e.Field + ": " + e.Msg
}

// Is makes a FieldError match ErrInvalid.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

// source remembers where each setting was written, so that Validate can
// name the line of the value it refuses.
type source struct {
	file  string
	lines map[string]int // field path -> line of its key
}

// locate adds the file and line of e's field, or of the nearest enclosing
// setting written in the file.
func (s *source) locate(e *FieldError) {
	if s == nil || e.File != "" {
		return
	}
	for f := e.Field; f != ""; f = parentField(f) {
		if line, ok := s.lines[f]; ok {
			e.File, e.Line = s.file, line
			return
		}
	}
}

// parentField drops the last element of a dotted, indexed field path.
func parentField(f string) string {
	i := strings.LastIndexAny(f, ".[")
	if i < 0 {
		return ""
	}
	return f[:i]
}

// Decode parses YAML strictly into c: unknown or repeated keys, values of
// the wrong kind and anchors are errors naming the file, line and key, an
// unknown key listed with the valid ones at its level. Every error
// matches ErrInvalid.
func (c *Config) Decode(b []byte, name string) error {
	root, err := yamlconf.Document(name, b)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if root == nil {
		c.src = &source{file: name, lines: map[string]int{}}
		return nil
	}
	w := &shapeChecker{file: name, lines: map[string]int{}}
	w.check(root, "", reflect.TypeOf(*c))
	if len(w.errs) > 0 {
		slices.SortStableFunc(w.errs, func(x, y error) int {
			var ex, ey *yamlconf.Error
			errors.As(x, &ex)
			errors.As(y, &ey)
			return ex.Line - ey.Line
		})
		return fmt.Errorf("%w: %w", ErrInvalid, errors.Join(w.errs...))
	}
	if err := root.Decode(c); err != nil {
		// The shape check above admits only what decodes; this is a
		// safety net, not an expected path.
		return fmt.Errorf("%w: %s: %w", ErrInvalid, name, err)
	}
	c.src = &source{file: name, lines: w.lines}
	return nil
}

// shapeChecker walks a YAML node tree alongside the Go type it decodes
// into, reporting every mismatch in the words of the file (keys, lists,
// whole numbers), never of Go.
type shapeChecker struct {
	file  string
	lines map[string]int
	errs  []error
}

func (w *shapeChecker) fail(n *yaml.Node, field, format string, a ...any) {
	if len(w.errs) < maxDecodeErrors {
		w.errs = append(w.errs, &yamlconf.Error{File: w.file, Line: n.Line, Field: field, Msg: fmt.Sprintf(format, a...)})
	}
}

// yamlKeys returns the YAML keys of struct type t and their field indexes.
func yamlKeys(t reflect.Type) ([]string, map[string]int) {
	var keys []string
	idx := map[string]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		keys = append(keys, name)
		idx[name] = i
	}
	return keys, idx
}

func (w *shapeChecker) check(n *yaml.Node, field string, t reflect.Type) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // an empty value keeps the default
	}
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		w.fail(n, field, "YAML anchors and aliases are not supported: write the value out")
		return
	}
	scalar := func(want string, tags ...string) {
		if n.Kind != yaml.ScalarNode || len(tags) > 0 && !slices.Contains(tags, n.Tag) {
			w.fail(n, field, "want %s, got %s", want, yamlconf.KindName(n))
			return
		}
		// A number of the right kind may still not fit (2^70).
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			w.fail(n, field, "want %s, got %s, which is out of range", want, yamlconf.KindName(n))
		}
	}
	switch t.Kind() {
	case reflect.Struct:
		keys, idx := yamlKeys(t)
		where := field
		if where == "" {
			where = "the configuration"
		}
		if n.Kind != yaml.MappingNode {
			w.fail(n, field, "%s must be a mapping of key: value, got %s", where, yamlconf.KindName(n))
			return
		}
		for _, err := range yamlconf.Mapping(w.file, n, field, keys, func(key string, k, v *yaml.Node, f string) {
			w.lines[f] = k.Line
			w.check(v, f, t.Field(idx[key]).Type)
		}) {
			if len(w.errs) < maxDecodeErrors {
				w.errs = append(w.errs, err)
			}
		}
	case reflect.String:
		scalar("a text value")
	case reflect.Int, reflect.Int64:
		scalar("a whole number", "!!int")
	case reflect.Float64:
		scalar("a number", "!!int", "!!float")
	case reflect.Bool:
		scalar("true or false", "!!bool")
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			w.fail(n, field, "want a list such as [a, b], got %s", yamlconf.KindName(n))
			return
		}
		for i, e := range n.Content {
			f := fmt.Sprintf("%s[%d]", field, i)
			w.lines[f] = e.Line
			w.check(e, f, t.Elem())
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			w.fail(n, field, "want a mapping of name: value, got %s", yamlconf.KindName(n))
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				w.fail(k, field, "a name must be a plain word, got %s", yamlconf.KindName(k))
				continue
			}
			f := yamlconf.JoinField(field, k.Value)
			w.lines[f] = k.Line
			w.check(v, f, t.Elem())
		}
	default:
		w.fail(n, field, "cannot be set in the file")
	}
}

// Settings returns every setting of c by its dotted key as written in the
// file (acme.orders_per_hour, alerts.channels[0].url), each value as
// text: lists of values as [a, b], mappings as {k: v}, and unset or
// empty ones as "". Comparing the settings of two configurations says
// which keys changed.
func (c *Config) Settings() map[string]string {
	out := map[string]string{}
	flatten(out, "", reflect.ValueOf(*c))
	return out
}

func flatten(out map[string]string, field string, v reflect.Value) {
	if (v.Kind() == reflect.Slice || v.Kind() == reflect.Map) && v.Len() == 0 {
		out[field] = "" // as if absent: an added list item's empty fields are no change
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		keys, idx := yamlKeys(v.Type())
		for _, k := range keys {
			flatten(out, yamlconf.JoinField(field, k), v.Field(idx[k]))
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Struct {
			for i := range v.Len() {
				flatten(out, fmt.Sprintf("%s[%d]", field, i), v.Index(i))
			}
			return
		}
		parts := make([]string, v.Len())
		for i := range v.Len() {
			parts[i] = fmt.Sprint(v.Index(i).Interface())
		}
		out[field] = "[" + strings.Join(parts, ", ") + "]"
	case reflect.Map:
		keys := make([]string, 0, v.Len())
		for _, k := range v.MapKeys() {
			keys = append(keys, k.String())
		}
		slices.Sort(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + ": " + fmt.Sprint(v.MapIndex(reflect.ValueOf(k)).Interface())
		}
		out[field] = "{" + strings.Join(parts, ", ") + "}"
	default:
		out[field] = fmt.Sprint(v.Interface())
	}
}
