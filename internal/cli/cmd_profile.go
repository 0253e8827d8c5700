package cli

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// maxProfileFile matches the server's request body limit.
const maxProfileFile = 1 << 20

func profileCommands() []*command {
	return []*command{
		{
			name: "list", summary: "list certificate profiles", args: "[--json]",
			example: "certwright profile list",
			run:     runProfileList,
		},
		{
			name: "show", summary: "show a profile's definition (as YAML that profile create accepts)", args: "NAME [--json]",
			example: "certwright profile show web_server > my_profile.yaml",
			run:     runProfileShow,
		},
		{
			name: "create", summary: "create a profile from a YAML or JSON definition", args: "--file FILE",
			example: "certwright profile create --file my_profile.yaml",
			run:     runProfileCreate,
		},
		{
			name: "update", summary: "replace a custom profile's definition", args: "NAME --file FILE",
			example: "certwright profile update my_profile --file my_profile.yaml",
			run:     runProfileUpdate,
		},
		{
			name: "delete", summary: "delete a custom profile", args: "NAME",
			example: "certwright profile delete my_profile",
			run:     runProfileDelete,
		},
	}
}

func runProfileList(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("profile list")
	c, _, err := r.open(fs, cf, args)
	if err != nil {
		return err
	}
	defer c.close()
	list, err := c.ListProfiles(ctx)
	if err != nil {
		return err
	}
	if cf.json {
		if list.Profiles == nil {
			list.Profiles = []map[string]any{}
		}
		return printJSON(r.stdout, list)
	}
	if len(list.Profiles) == 0 {
		fmt.Fprintln(r.stderr, "No profiles.")
		return nil
	}
	t := newTable(r.stdout, "NAME", "KEYS", "MAX DAYS", "USAGE", "BUILT-IN", "DESCRIPTION")
	for _, p := range list.Profiles {
		builtin := "no"
		if b, _ := p["builtin"].(bool); b {
			builtin = "yes"
		}
		t.row(mapString(p, "name"), profileKeys(p), mapString(p, "max_validity_days"),
			strings.Join(mapStrings(p, "ext_key_usage"), ","), builtin, mapString(p, "description"))
	}
	return t.flush()
}

// mapString renders one scalar field of a JSON object.
func mapString(m map[string]any, key string) string {
	switch v := m[key].(type) {
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	}
	return ""
}

func mapStrings(m map[string]any, key string) []string {
	list, _ := m[key].([]any)
	var out []string
	for _, v := range list {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// profileKeys renders the key rules as "ECDSA-256,RSA-2048".
func profileKeys(p map[string]any) string {
	list, _ := p["keys"].([]any)
	var out []string
	for _, v := range list {
		k, ok := v.(map[string]any)
		if !ok {
			continue
		}
		s := mapString(k, "algorithm")
		if bits := mapString(k, "min_bits"); bits != "" && bits != "0" {
			s += "-" + bits
		}
		out = append(out, s)
	}
	return strings.Join(out, ",")
}

// profileFieldOrder puts a profile's fields in reading order.
func profileFieldOrder() []string {
	return []string{
		"name", "description", "keys", "max_validity_days", "renew_before_days",
		"key_usage", "ext_key_usage", "names", "subject_fields",
		"require_approval", "key_export", "cabf_lints",
	}
}

// profileYAML renders a profile as YAML in reading order. "builtin" is left
// out: it is not part of a definition, so the output can be edited and fed
// back to "profile create".
func profileYAML(p map[string]any) ([]byte, error) {
	doc := &yaml.Node{Kind: yaml.MappingNode}
	add := func(k string) error {
		var kn, vn yaml.Node
		kn.SetString(k)
		if err := vn.Encode(p[k]); err != nil {
			return fmt.Errorf("render profile field %s: %w", k, err)
		}
		doc.Content = append(doc.Content, &kn, &vn)
		return nil
	}
	seen := map[string]bool{"builtin": true}
	for _, k := range profileFieldOrder() {
		if _, ok := p[k]; ok {
			seen[k] = true
			if err := add(k); err != nil {
				return nil, err
			}
		}
	}
	var rest []string
	for k := range p {
		if !seen[k] {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	for _, k := range rest {
		if err := add(k); err != nil {
			return nil, err
		}
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("render profile: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("render profile: %w", err)
	}
	return buf.Bytes(), nil
}

func runProfileShow(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("profile show")
	c, pos, err := r.open(fs, cf, args, "NAME")
	if err != nil {
		return err
	}
	defer c.close()
	p, err := c.GetProfile(ctx, pos[0])
	if err != nil {
		return c.explainNotFound(ctx, err, nameRef{"profile", pos[0]})
	}
	if cf.json {
		return printJSON(r.stdout, p)
	}
	out, err := profileYAML(p)
	if err != nil {
		return err
	}
	if b, _ := p["builtin"].(bool); b {
		fmt.Fprintf(r.stdout, "# built-in profile: it cannot be changed; create a copy under another name instead\n")
	}
	_, err = r.stdout.Write(out)
	return err
}

// profileContentType picks the media type from the file name, else from
// the content: a JSON definition starts with "{".
func profileContentType(path string, data []byte) string {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".json":
		return "application/json"
	case ".yaml", ".yml":
		return "application/yaml"
	}
	if bytes.HasPrefix(bytes.TrimSpace(data), []byte("{")) {
		return "application/json"
	}
	return "application/yaml"
}

func (r *runner) readProfileFile(path string) ([]byte, string, error) {
	data, err := r.readInput(path, maxProfileFile)
	if err != nil {
		return nil, "", fmt.Errorf("read profile: %w", err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, "", fmt.Errorf("read profile: %s is empty", path)
	}
	return data, profileContentType(path, data), nil
}

func runProfileWrite(ctx context.Context, r *runner, args []string, update bool) error {
	name := "profile create"
	var positional []string
	if update {
		name, positional = "profile update", []string{"NAME"}
	}
	fs, cf := newClientFlagSet(name)
	file := fs.String("file", "", "YAML or JSON profile definition `FILE` (- for standard input)")
	pos, err := r.parse(fs, args, positional...)
	if err != nil {
		return err
	}
	if err := r.required(fs, "file"); err != nil {
		return err
	}
	def, ctype, err := r.readProfileFile(*file)
	if err != nil {
		return err
	}
	c, err := r.connect(cf)
	if err != nil {
		return err
	}
	defer c.close()
	var p map[string]any
	verb := "Created"
	if update {
		p, err = c.UpdateProfile(ctx, pos[0], def, ctype)
		verb = "Updated"
	} else {
		p, err = c.CreateProfile(ctx, def, ctype)
	}
	if err != nil {
		return err
	}
	if cf.json {
		return printJSON(r.stdout, p)
	}
	fmt.Fprintf(r.stdout, "%s profile %s.\n", verb, mapString(p, "name"))
	return nil
}

func runProfileCreate(ctx context.Context, r *runner, args []string) error {
	return runProfileWrite(ctx, r, args, false)
}

func runProfileUpdate(ctx context.Context, r *runner, args []string) error {
	return runProfileWrite(ctx, r, args, true)
}

func runProfileDelete(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("profile delete")
	c, pos, err := r.open(fs, cf, args, "NAME")
	if err != nil {
		return err
	}
	defer c.close()
	if err := c.DeleteProfile(ctx, pos[0]); err != nil {
		return err
	}
	if cf.json {
		return printJSON(r.stdout, map[string]string{"deleted": pos[0]})
	}
	fmt.Fprintf(r.stdout, "Deleted profile %s.\n", pos[0])
	return nil
}
