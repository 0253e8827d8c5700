package agent

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/yamlconf"
)

// Limits and defaults of the configuration.
const (
	// MaxConfigSize bounds the configuration file.
	MaxConfigSize = 256 << 10
	// maxEntries bounds the certificates one agent manages.
	maxEntries = 1000
	// maxConfigErrors is how many problems one load reports.
	maxConfigErrors = 20

	DefaultCheckInterval = time.Hour
	DefaultReloadTimeout = 60 * time.Second
	DefaultCheckTimeout  = 30 * time.Second
	DefaultKeyType       = pki.ECDSAP256

	defaultPublicMode os.FileMode = 0o644
	defaultSecretMode os.FileMode = 0o600
)

// Config is an agent configuration file, decoded and validated. Paths are
// absolute: relative ones are resolved against the file's directory.
type Config struct {
	// Path is the file the configuration was read from.
	Path string
	// Server is the Certwright server's base URL (https).
	Server *url.URL
	// CAFile holds the root certificate(s) trusted for the server's TLS
	// certificate; empty: the system roots.
	CAFile string
	// TokenFile holds the machine principal's API token (mode 0600).
	TokenFile string
	// ClientCert and ClientKey authenticate with mTLS instead of a token;
	// the agent renews this certificate too.
	ClientCert string
	ClientKey  string
	// ClientProfile is the profile the client certificate is renewed
	// under; empty: the profile the server recorded for it.
	ClientProfile string
	// CheckInterval is how often the agent asks the server.
	CheckInterval time.Duration
	// StateDir, when set, keeps the retry state across restarts.
	StateDir string
	// LogLevel is the least severe level logged.
	LogLevel slog.Level
	// Certificates are the certificates to keep deployed, names unique.
	Certificates []Entry
}

// FileModes are the permissions of the files of one entry.
type FileModes struct {
	Cert, Chain, Key, Bundle os.FileMode
}

// Entry is one certificate the agent keeps on this host.
type Entry struct {
	Name         string
	CommonName   string
	DNSNames     []string
	IPAddresses  []net.IP
	URIs         []*url.URL
	Profile      string
	CA           string
	KeyType      pki.KeyAlgorithm
	ValidityDays int
	Tags         []string
	Owner        string

	// Cert holds the leaf followed by the chain; Chain the issuing CA and
	// intermediates; Key the private key (PKCS#8); Bundle all three.
	Cert, Chain, Key, Bundle string
	// User and Group own the files when set; UID and GID are -1 otherwise.
	User, Group string
	UID, GID    int
	Mode        FileModes

	// Reload (run with /bin/sh -c) or ReloadArgv is run after new files
	// are in place, for at most ReloadTimeout.
	Reload        string
	ReloadArgv    []string
	ReloadTimeout time.Duration
	// Check is a host:port that must serve the new certificate after the
	// reload, within CheckTimeout.
	Check        string
	CheckTimeout time.Duration
	// CheckRevocation says what the revocation status of the chain the
	// check was served does to the check (default RevocationWarn).
	CheckRevocation RevocationPolicy
	// RenewBefore, when set, renews once less than this is left,
	// whatever the server's renewal window says.
	RenewBefore time.Duration
}

// RevocationPolicy is what the agent does with the revocation status of
// the chain a check is served, asked of its CRLs and OCSP responders from
// this host.
type RevocationPolicy string

// Revocation policies of check_revocation.
const (
	// RevocationWarn: a revoked certificate fails the check; a status
	// that cannot be determined (the CA's URLs unreachable from here) is
	// logged as a warning.
	RevocationWarn RevocationPolicy = "warn"
	// RevocationRequire: the check fails unless every certificate is
	// known not to be revoked.
	RevocationRequire RevocationPolicy = "require"
	// RevocationOff: no revocation lookup.
	RevocationOff RevocationPolicy = "off"
)

// ConfigError is one problem in a configuration file: where it is, which
// field, and what is wrong.
type ConfigError = yamlconf.Error

// LoadConfig reads, decodes and validates an agent configuration file.
// Decoding is strict: unknown or repeated fields, values of the wrong type
// and YAML anchors are errors, each naming its line and field.
func LoadConfig(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("agent: read config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("agent: read config %s: %w", path, err)
	}
	if len(data) > MaxConfigSize {
		return nil, fmt.Errorf("agent: config %s is larger than %d bytes", path, MaxConfigSize)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("agent: config %s: %w", path, err)
	}
	return ParseConfig(path, filepath.Dir(abs), data)
}

// ParseConfig decodes and validates configuration data. name is used in
// error messages; relative paths are resolved against baseDir.
func ParseConfig(name, baseDir string, data []byte) (*Config, error) {
	if len(data) > MaxConfigSize {
		return nil, fmt.Errorf("agent: config %s is larger than %d bytes", name, MaxConfigSize)
	}
	d := &nodeDecoder{file: name, baseDir: baseDir}
	root, err := yamlconf.Document(name, data)
	if err != nil {
		return nil, err
	}
	if root == nil {
		return nil, &ConfigError{File: name, Msg: "the file is empty: it needs at least server, token_file (or client_cert and client_key) and certificates"}
	}
	cfg := d.config(root)
	if len(d.errs) > 0 {
		return nil, errors.Join(d.errs...)
	}
	cfg.Path = name
	return cfg, nil
}

// nodeDecoder walks the YAML node tree, so that every error carries the
// line it is about.
type nodeDecoder struct {
	file    string
	baseDir string
	errs    []error
}

func (d *nodeDecoder) fail(n *yaml.Node, field, format string, a ...any) {
	if len(d.errs) >= maxConfigErrors {
		return
	}
	line := 0
	if n != nil {
		line = n.Line
	}
	d.errs = append(d.errs, &ConfigError{File: d.file, Line: line, Field: field, Msg: fmt.Sprintf(format, a...)})
}

// fields walks a mapping: each key must be in table and appear once. It
// returns the key nodes seen, by name.
func (d *nodeDecoder) fields(n *yaml.Node, path string, table map[string]func(v *yaml.Node, field string)) map[string]*yaml.Node {
	seen := map[string]*yaml.Node{}
	known := make([]string, 0, len(table))
	for name := range table {
		known = append(known, name)
	}
	errs := yamlconf.Mapping(d.file, n, path, known, func(key string, k, v *yaml.Node, field string) {
		seen[key] = k
		table[key](v, field)
	})
	for _, e := range errs {
		if len(d.errs) < maxConfigErrors {
			d.errs = append(d.errs, e)
		}
	}
	return seen
}

// str reads a non-empty scalar as written: "reload: true" is the
// command true, not a boolean.
func (d *nodeDecoder) str(n *yaml.Node, field string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		d.fail(n, field, "want a string, got %s", yamlconf.KindName(n))
		return "", false
	}
	s := strings.TrimSpace(n.Value)
	if s == "" {
		d.fail(n, field, "is empty")
		return "", false
	}
	return s, true
}

func (d *nodeDecoder) strList(n *yaml.Node, field string) ([]string, bool) {
	if n.Kind != yaml.SequenceNode {
		d.fail(n, field, "want a list such as [a, b], got %s", yamlconf.KindName(n))
		return nil, false
	}
	out := make([]string, 0, len(n.Content))
	ok := true
	for i, c := range n.Content {
		s, good := d.str(c, fmt.Sprintf("%s[%d]", field, i))
		ok = ok && good
		out = append(out, s)
	}
	return out, ok
}

func (d *nodeDecoder) duration(n *yaml.Node, field string) (time.Duration, bool) {
	s, ok := d.str(n, field)
	if !ok {
		return 0, false
	}
	v, err := inventory.ParseWindow(s)
	if err != nil {
		d.fail(n, field, "%v", err)
		return 0, false
	}
	return v, true
}

func (d *nodeDecoder) positiveInt(n *yaml.Node, field string) (int, bool) {
	v, err := strconv.Atoi(n.Value)
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || err != nil || v <= 0 {
		d.fail(n, field, "want a positive whole number, got %s", yamlconf.KindName(n))
		return 0, false
	}
	return v, true
}

// mode reads an octal permission such as 0640 or 0o640.
func (d *nodeDecoder) mode(n *yaml.Node, field string) (os.FileMode, bool) {
	s, ok := d.str(n, field)
	if !ok {
		return 0, false
	}
	digits := strings.TrimPrefix(strings.TrimPrefix(s, "0o"), "0O")
	v, err := strconv.ParseUint(digits, 8, 32)
	if err != nil || v > 0o777 {
		d.fail(n, field, "%q is not an octal file mode such as 0640", s)
		return 0, false
	}
	return os.FileMode(v), true
}

// path reads a file path, resolving a relative one against the config's directory.
func (d *nodeDecoder) path(n *yaml.Node, field string) (string, bool) {
	s, ok := d.str(n, field)
	if !ok {
		return "", false
	}
	if strings.ContainsRune(s, 0) {
		d.fail(n, field, "path holds a NUL byte")
		return "", false
	}
	if !filepath.IsAbs(s) {
		s = filepath.Join(d.baseDir, s)
	}
	return filepath.Clean(s), true
}

var logLevels = map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}

func (d *nodeDecoder) config(root *yaml.Node) *Config {
	cfg := &Config{CheckInterval: DefaultCheckInterval, LogLevel: slog.LevelInfo}
	var entriesNode *yaml.Node
	pathLines := map[string]*yaml.Node{}
	seen := d.fields(root, "", map[string]func(*yaml.Node, string){
		"server": func(v *yaml.Node, f string) {
			s, ok := d.str(v, f)
			if !ok {
				return
			}
			u, err := url.Parse(s)
			switch {
			case err != nil:
				d.fail(v, f, "%q is not a URL: %v", s, err)
			case u.Scheme != "https":
				d.fail(v, f, "%q: want an https:// URL (the token must not cross the network in clear)", s)
			case u.Host == "":
				d.fail(v, f, "%q has no host", s)
			case u.User != nil || u.RawQuery != "" || u.Fragment != "":
				d.fail(v, f, "%q: want only scheme, host, port and path", s)
			default:
				u.Path = strings.TrimRight(u.Path, "/")
				cfg.Server = u
			}
		},
		"ca_file":     func(v *yaml.Node, f string) { cfg.CAFile, _ = d.path(v, f) },
		"token_file":  func(v *yaml.Node, f string) { cfg.TokenFile, _ = d.path(v, f) },
		"client_cert": func(v *yaml.Node, f string) { cfg.ClientCert, _ = d.path(v, f) },
		"client_key":  func(v *yaml.Node, f string) { cfg.ClientKey, _ = d.path(v, f) },
		"client_profile": func(v *yaml.Node, f string) {
			cfg.ClientProfile, _ = d.str(v, f)
		},
		"check_interval": func(v *yaml.Node, f string) {
			if dur, ok := d.duration(v, f); ok {
				if dur < time.Second {
					d.fail(v, f, "%s is shorter than the minimum of 1s", dur)
					return
				}
				cfg.CheckInterval = dur
			}
		},
		"state_dir": func(v *yaml.Node, f string) { cfg.StateDir, _ = d.path(v, f) },
		"log_level": func(v *yaml.Node, f string) {
			s, ok := d.str(v, f)
			if !ok {
				return
			}
			l, known := logLevels[strings.ToLower(s)]
			if !known {
				d.fail(v, f, "%q is not one of debug, info, warn, error", s)
				return
			}
			cfg.LogLevel = l
		},
		"certificates": func(v *yaml.Node, f string) { entriesNode = v },
	})
	if root.Kind != yaml.MappingNode {
		return cfg
	}
	if seen["server"] == nil {
		d.fail(root, "server", "is required: the Certwright server's URL, e.g. https://pki.example.internal:8443")
	}
	hasToken, hasCert, hasKey := seen["token_file"] != nil, seen["client_cert"] != nil, seen["client_key"] != nil
	switch {
	case hasToken && (hasCert || hasKey):
		d.fail(seen["token_file"], "token_file", "set token_file or client_cert and client_key, not both")
	case !hasToken && !hasCert && !hasKey:
		d.fail(root, "token_file", "is required (or client_cert and client_key for mTLS): the agent must authenticate to the server")
	case hasCert && !hasKey:
		d.fail(seen["client_cert"], "client_key", "is required with client_cert")
	case hasKey && !hasCert:
		d.fail(seen["client_key"], "client_cert", "is required with client_key")
	}
	if seen["client_profile"] != nil && !hasCert {
		d.fail(seen["client_profile"], "client_profile", "only applies with client_cert and client_key")
	}
	for _, p := range []struct {
		name string
		path string
	}{{"ca_file", cfg.CAFile}, {"token_file", cfg.TokenFile}, {"client_cert", cfg.ClientCert}, {"client_key", cfg.ClientKey}} {
		if p.path != "" {
			d.samePath(pathLines, seen[p.name], p.name, p.path)
		}
	}
	if entriesNode == nil {
		if !hasCert {
			d.fail(root, "certificates", "is required: the list of certificates to deploy on this host")
		}
		return cfg
	}
	if entriesNode.Kind != yaml.SequenceNode {
		d.fail(entriesNode, "certificates", "want a list of certificates, got %s", yamlconf.KindName(entriesNode))
		return cfg
	}
	if len(entriesNode.Content) == 0 && !hasCert {
		d.fail(entriesNode, "certificates", "lists no certificate")
	}
	if len(entriesNode.Content) > maxEntries {
		d.fail(entriesNode, "certificates", "%d entries, more than the limit of %d", len(entriesNode.Content), maxEntries)
		return cfg
	}
	names := map[string]*yaml.Node{}
	for i, n := range entriesNode.Content {
		field := fmt.Sprintf("certificates[%d]", i)
		e, nameNode := d.entry(n, field, pathLines)
		if e == nil {
			continue
		}
		if prev, dup := names[e.Name]; dup {
			d.fail(nameNode, field+".name", "%q is already the name of the entry on line %d", e.Name, prev.Line)
		} else if nameNode != nil {
			names[e.Name] = nameNode
		}
		cfg.Certificates = append(cfg.Certificates, *e)
	}
	return cfg
}

// samePath fails when two fields name the same file.
func (d *nodeDecoder) samePath(lines map[string]*yaml.Node, n *yaml.Node, field, path string) {
	if prev, dup := lines[path]; dup {
		d.fail(n, field, "%s is already used on line %d: every file must have one use", path, prev.Line)
		return
	}
	lines[path] = n
}

var entryName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

func validDNSName(s string) bool {
	if len(s) > 253 || strings.HasSuffix(s, ".") {
		return false
	}
	for i, label := range strings.Split(s, ".") {
		if label == "*" && i == 0 {
			continue
		}
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

func (d *nodeDecoder) entry(n *yaml.Node, path string, pathLines map[string]*yaml.Node) (*Entry, *yaml.Node) {
	e := &Entry{
		KeyType: DefaultKeyType, UID: -1, GID: -1,
		Mode:          FileModes{Cert: defaultPublicMode, Chain: defaultPublicMode, Key: defaultSecretMode, Bundle: defaultSecretMode},
		ReloadTimeout: DefaultReloadTimeout, CheckTimeout: DefaultCheckTimeout, CheckRevocation: RevocationWarn,
	}
	errsBefore := len(d.errs)
	modeNodes := map[string]*yaml.Node{}
	seen := d.fields(n, path, map[string]func(*yaml.Node, string){
		"name": func(v *yaml.Node, f string) {
			s, ok := d.str(v, f)
			if ok && !entryName.MatchString(s) {
				d.fail(v, f, "%q: want letters, digits, '.', '_' or '-' (at most 64, starting with a letter or digit)", s)
			}
			e.Name = s
		},
		"common_name": func(v *yaml.Node, f string) { e.CommonName, _ = d.str(v, f) },
		"dns_names": func(v *yaml.Node, f string) {
			list, _ := d.strList(v, f)
			for i, s := range list {
				s = strings.ToLower(s)
				if s != "" && !validDNSName(s) {
					d.fail(v.Content[i], fmt.Sprintf("%s[%d]", f, i), "%q is not a DNS name", s)
				}
				e.DNSNames = append(e.DNSNames, s)
			}
		},
		"ip_addresses": func(v *yaml.Node, f string) {
			list, _ := d.strList(v, f)
			for i, s := range list {
				a, err := netip.ParseAddr(s)
				if err != nil || a.Zone() != "" {
					if s != "" {
						d.fail(v.Content[i], fmt.Sprintf("%s[%d]", f, i), "%q is not an IP address", s)
					}
					continue
				}
				e.IPAddresses = append(e.IPAddresses, net.IP(a.Unmap().AsSlice()))
			}
		},
		"uris": func(v *yaml.Node, f string) {
			list, _ := d.strList(v, f)
			for i, s := range list {
				u, err := url.Parse(s)
				if err != nil || u.Scheme == "" || (u.Host == "" && u.Opaque == "") {
					if s != "" {
						d.fail(v.Content[i], fmt.Sprintf("%s[%d]", f, i), "%q is not an absolute URI such as spiffe://example.internal/app", s)
					}
					continue
				}
				e.URIs = append(e.URIs, u)
			}
		},
		"profile": func(v *yaml.Node, f string) { e.Profile, _ = d.str(v, f) },
		"ca":      func(v *yaml.Node, f string) { e.CA, _ = d.str(v, f) },
		"key_type": func(v *yaml.Node, f string) {
			s, ok := d.str(v, f)
			if !ok {
				return
			}
			alg := pki.KeyAlgorithm(s)
			if !slices.Contains(pki.KeyAlgorithms(), alg) {
				names := make([]string, 0, 6)
				for _, a := range pki.KeyAlgorithms() {
					names = append(names, string(a))
				}
				d.fail(v, f, "%q is not one of %s", s, strings.Join(names, ", "))
				return
			}
			e.KeyType = alg
		},
		"validity_days": func(v *yaml.Node, f string) { e.ValidityDays, _ = d.positiveInt(v, f) },
		"tags":          func(v *yaml.Node, f string) { e.Tags, _ = d.strList(v, f) },
		"owner":         func(v *yaml.Node, f string) { e.Owner, _ = d.str(v, f) },
		"cert":          func(v *yaml.Node, f string) { e.Cert, _ = d.path(v, f) },
		"chain":         func(v *yaml.Node, f string) { e.Chain, _ = d.path(v, f) },
		"key":           func(v *yaml.Node, f string) { e.Key, _ = d.path(v, f) },
		"bundle":        func(v *yaml.Node, f string) { e.Bundle, _ = d.path(v, f) },
		"user": func(v *yaml.Node, f string) {
			s, ok := d.str(v, f)
			if !ok {
				return
			}
			e.User = s
			if id, err := strconv.Atoi(s); err == nil && id >= 0 {
				e.UID = id
				return
			}
			u, err := user.Lookup(s)
			if err != nil {
				d.fail(v, f, "no user %q on this host", s)
				return
			}
			e.UID, _ = strconv.Atoi(u.Uid)
		},
		"group": func(v *yaml.Node, f string) {
			s, ok := d.str(v, f)
			if !ok {
				return
			}
			e.Group = s
			if id, err := strconv.Atoi(s); err == nil && id >= 0 {
				e.GID = id
				return
			}
			g, err := user.LookupGroup(s)
			if err != nil {
				d.fail(v, f, "no group %q on this host", s)
				return
			}
			e.GID, _ = strconv.Atoi(g.Gid)
		},
		"mode": func(v *yaml.Node, f string) {
			set := func(dst *os.FileMode, name string) func(*yaml.Node, string) {
				return func(v *yaml.Node, f string) {
					if m, ok := d.mode(v, f); ok {
						*dst = m
						modeNodes[name] = v
					}
				}
			}
			d.fields(v, f, map[string]func(*yaml.Node, string){
				"cert": set(&e.Mode.Cert, "cert"), "chain": set(&e.Mode.Chain, "chain"),
				"key": set(&e.Mode.Key, "key"), "bundle": set(&e.Mode.Bundle, "bundle"),
			})
		},
		"reload": func(v *yaml.Node, f string) { e.Reload, _ = d.str(v, f) },
		"reload_argv": func(v *yaml.Node, f string) {
			e.ReloadArgv, _ = d.strList(v, f)
			if v.Kind == yaml.SequenceNode && len(v.Content) == 0 {
				d.fail(v, f, "is empty: give the program and its arguments")
			}
		},
		"reload_timeout": func(v *yaml.Node, f string) {
			if dur, ok := d.duration(v, f); ok {
				e.ReloadTimeout = dur
			}
		},
		"check": func(v *yaml.Node, f string) {
			s, ok := d.str(v, f)
			if !ok {
				return
			}
			host, port, err := net.SplitHostPort(s)
			if p, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || p <= 0 || p > 65535 {
				d.fail(v, f, "%q: want host:port, e.g. 127.0.0.1:443", s)
				return
			}
			e.Check = s
		},
		"check_timeout": func(v *yaml.Node, f string) {
			if dur, ok := d.duration(v, f); ok {
				e.CheckTimeout = dur
			}
		},
		"check_revocation": func(v *yaml.Node, f string) {
			s, ok := d.str(v, f)
			if !ok {
				return
			}
			switch p := RevocationPolicy(s); p {
			case RevocationWarn, RevocationRequire, RevocationOff:
				e.CheckRevocation = p
			default:
				d.fail(v, f, "%q: want warn (the default), require or off", s)
			}
		},
		"renew_before": func(v *yaml.Node, f string) { e.RenewBefore, _ = d.duration(v, f) },
	})
	if n.Kind != yaml.MappingNode {
		return nil, nil
	}
	if seen["name"] == nil {
		d.fail(n, path+".name", "is required: a name for this certificate, unique in the file")
	}
	if seen["profile"] == nil {
		d.fail(n, path+".profile", "is required: the profile to issue under, e.g. internal_service")
	}
	if len(e.DNSNames)+len(e.IPAddresses)+len(e.URIs) == 0 && len(d.errs) == errsBefore {
		at := n
		if seen["dns_names"] != nil {
			at = seen["dns_names"]
		}
		d.fail(at, path+".dns_names", "is required: the certificate needs at least one of dns_names, ip_addresses or uris")
	}
	switch {
	case e.Bundle != "":
	case e.Cert != "" && e.Key != "":
	case e.Cert != "":
		d.fail(seen["cert"], path+".key", "is required with cert (or use bundle): where to write the private key")
	case e.Key != "":
		d.fail(seen["key"], path+".cert", "is required with key (or use bundle): where to write the certificate")
	case seen["cert"] == nil && seen["key"] == nil && seen["bundle"] == nil:
		d.fail(n, path, "no files to write: set cert and key, or bundle")
	}
	if e.Chain != "" && e.Cert == "" && seen["cert"] == nil {
		d.fail(seen["chain"], path+".cert", "is required with chain")
	}
	if seen["reload"] != nil && seen["reload_argv"] != nil {
		d.fail(seen["reload_argv"], path+".reload_argv", "set reload or reload_argv, not both")
	}
	if seen["reload_timeout"] != nil && seen["reload"] == nil && seen["reload_argv"] == nil {
		d.fail(seen["reload_timeout"], path+".reload_timeout", "only applies with reload or reload_argv")
	}
	for _, name := range []string{"check_timeout", "check_revocation"} {
		if seen[name] != nil && seen["check"] == nil {
			d.fail(seen[name], path+"."+name, "only applies with check")
		}
	}
	for _, m := range []struct {
		name string
		mode os.FileMode
	}{{"key", e.Mode.Key}, {"bundle", e.Mode.Bundle}} {
		if m.mode&0o007 != 0 {
			d.fail(modeNodes[m.name], path+".mode."+m.name, "%04o lets every user on the host read or change the private key: use 0600 or 0640 with group", m.mode)
		}
		if m.mode&0o400 == 0 {
			d.fail(modeNodes[m.name], path+".mode."+m.name, "%04o does not let the owner read the private key", m.mode)
		}
	}
	for _, p := range []struct {
		name string
		path string
	}{{"cert", e.Cert}, {"chain", e.Chain}, {"key", e.Key}, {"bundle", e.Bundle}} {
		if p.path != "" {
			d.samePath(pathLines, seen[p.name], path+"."+p.name, p.path)
		}
	}
	if len(d.errs) > errsBefore {
		return nil, nil
	}
	return e, seen["name"]
}
