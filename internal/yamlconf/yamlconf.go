// Package yamlconf owns the strict reading of YAML configuration files:
// one document per file, and errors that name the file, the line and the
// field, with unknown keys listed next to the valid ones. The server
// configuration (internal/config) and the agent's (internal/agent) both
// read through it.
package yamlconf

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Error is one problem in a configuration file: where it is, which field,
// and what is wrong.
type Error struct {
	File  string
	Line  int
	Field string
	Msg   string
}

func (e *Error) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	if e.Field == "" {
		return loc + ": " + e.Msg
	}
	return loc + ": " + e.Field + ": " + e.Msg
}

// yamlLine finds the line yaml.v3 names in a syntax error.
var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): `)

// syntaxError turns a yaml.v3 parse error into an Error with its line.
func syntaxError(file string, err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
	}
	return &Error{File: file, Line: line, Msg: "not valid YAML: " + msg}
}

// Document parses data, which must hold at most one YAML document, and
// returns its root node; nil when the file holds no document (it is empty
// or only comments). Errors are *Error.
func Document(file string, data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, syntaxError(file, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, &Error{File: file, Line: extra.Line, Msg: "a second YAML document: the file must hold one"}
	} else if !errors.Is(err, io.EOF) {
		return nil, syntaxError(file, err)
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	return doc.Content[0], nil
}

// KindName describes a node for messages: "a mapping", "a list", or the
// scalar as written.
func KindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "a document"
}

// JoinField appends name to a dotted field path.
func JoinField(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// Mapping walks the mapping n at field path: every key must be one of
// known and appear once, and no value may be an anchor or alias. visit is
// called for each good key with its value node and full field name.
// Problems are returned in file order, each an *Error; an unknown key's
// error lists the known ones.
func Mapping(file string, n *yaml.Node, path string, known []string, visit func(key string, k, v *yaml.Node, field string)) []error {
	var errs []error
	fail := func(at *yaml.Node, field, format string, a ...any) {
		errs = append(errs, &Error{File: file, Line: at.Line, Field: field, Msg: fmt.Sprintf(format, a...)})
	}
	if n.Kind != yaml.MappingNode {
		fail(n, path, "want a mapping of field: value, got %s", KindName(n))
		return errs
	}
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			fail(k, path, "a field name must be a plain word, got %s", KindName(k))
			continue
		}
		field := JoinField(path, k.Value)
		if prev, dup := seen[k.Value]; dup {
			fail(k, field, "given twice (first on line %d)", prev.Line)
			continue
		}
		seen[k.Value] = k
		if !slices.Contains(known, k.Value) {
			sorted := slices.Clone(known)
			slices.Sort(sorted)
			fail(k, field, "unknown field (known fields: %s)", strings.Join(sorted, ", "))
			continue
		}
		if v.Kind == yaml.AliasNode || v.Anchor != "" {
			fail(v, field, "YAML anchors and aliases are not supported: write the value out")
			continue
		}
		visit(k.Value, k, v, field)
	}
	return errs
}
