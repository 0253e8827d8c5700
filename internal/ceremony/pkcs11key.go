package ceremony

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
)

// SourcePKCS11 is KeyRef.Source for a root key kept in a PKCS#11 token.
const SourcePKCS11 = "pkcs11"

// ErrNoPKCS11 is returned for a root key in a token by a build without
// cgo: the PKCS#11 module is loaded with dlopen, which needs cgo.
var ErrNoPKCS11 = errors.New("ceremony: this build has no PKCS#11 support (it was built without cgo, and the module is loaded with dlopen): use a certwright built with CGO_ENABLED=1")

// PKCS11Ref names a root key in a token, in the state and the transcript.
type PKCS11Ref struct {
	// Module is the path of the PKCS#11 library.
	Module string `json:"module"`
	// TokenLabel and TokenSerial are what the token reports.
	TokenLabel  string `json:"token_label"`
	TokenSerial string `json:"token_serial"`
	// KeyLabel and KeyID are the private key's CKA_LABEL and CKA_ID (hex).
	KeyLabel string `json:"key_label"`
	KeyID    string `json:"key_id"`
}

// PKCS11Options says which token holds the root key, where its PIN is,
// and which key is the root's.
type PKCS11Options struct {
	// Module is the absolute path of the PKCS#11 library.
	Module string
	// TokenLabel or TokenSerial (exactly one) selects the token.
	TokenLabel, TokenSerial string
	// PINFile (mode 0600) or PINEnv, the name of an environment variable
	// (exactly one), holds the user PIN; it is never given itself.
	PINFile, PINEnv string
	// KeyLabel is the CKA_LABEL of the root key: of the key Generate
	// makes, or of the existing key to adopt.
	KeyLabel string
	// Adopt makes Generate take the existing key KeyLabel names (made
	// with the HSM's own tools, say) instead of making one. The key must
	// be a sensitive, never extractable signing key whose public key
	// object, of the same CKA_ID, matches it.
	Adopt bool
	// Rand makes the CKA_ID of a new key; nil means crypto/rand.
	Rand io.Reader

	// keyID is the CKA_ID of a key the state records.
	keyID []byte
	// dir is the ceremony directory of a key the state records: a
	// module inside it is refused.
	dir string
}

// DefaultKeyLabel is the CKA_LABEL of a root key generated in a token
// when none is given: "root:" and the root's common name.
func DefaultKeyLabel(commonName string) string { return "root:" + commonName }

// NewPKCS11Key returns a key source in the token o names: Generate makes
// the root key there (private, sensitive, never extractable, sign only,
// labelled o.KeyLabel under a random 16-byte CKA_ID), or with o.Adopt
// takes the existing key labelled o.KeyLabel. The token is opened, and
// the PIN read, only when the key is first needed; the options are checked
// at once. A build without cgo returns ErrNoPKCS11.
func NewPKCS11Key(o PKCS11Options) (KeySource, error) {
	if o.KeyLabel == "" {
		return nil, fmt.Errorf("%w: the root key's label in the token is required", ErrInvalid)
	}
	return newPKCS11Key(o)
}

// reopenPKCS11Key returns the source of the root key ref records in the
// ceremony directory dir, with the PIN, module and token of u. (Open has
// checked ref against the transcript's root.create entry.)
func reopenPKCS11Key(dir string, ref KeyRef, u PKCS11Unlock) (KeySource, error) {
	r := ref.PKCS11
	if r == nil {
		return nil, fmt.Errorf("%w: the key source is %s, but the state names no token", ErrState, SourcePKCS11)
	}
	id, err := hex.DecodeString(r.KeyID)
	if err != nil || len(id) == 0 || r.KeyLabel == "" || (r.TokenLabel == "" && r.TokenSerial == "") || !filepath.IsAbs(r.Module) {
		return nil, fmt.Errorf("%w: the state's PKCS#11 key (module %q, token %q serial %q, key %q ID %q) is incomplete", ErrState, r.Module, r.TokenLabel, r.TokenSerial, r.KeyLabel, r.KeyID)
	}
	if u.PINFile == "" && u.PINEnv == "" {
		return nil, fmt.Errorf("%w: the root key is in the PKCS#11 token %q (serial %s): give the file or the environment variable holding its PIN", ErrInvalid, r.TokenLabel, r.TokenSerial)
	}
	o := PKCS11Options{Module: r.Module, PINFile: u.PINFile, PINEnv: u.PINEnv, KeyLabel: r.KeyLabel, keyID: id, dir: dir}
	if u.Module != "" {
		o.Module = u.Module
	}
	switch {
	case u.TokenLabel != "" || u.TokenSerial != "":
		o.TokenLabel, o.TokenSerial = u.TokenLabel, u.TokenSerial
	case r.TokenSerial != "":
		// The serial tells tokens apart; two tokens may share a label.
		o.TokenSerial = r.TokenSerial
	default:
		o.TokenLabel = r.TokenLabel
	}
	return NewPKCS11Key(o)
}

// KeyModule is the PKCS#11 library a key source in a token loads, as
// checked before it is loaded.
type KeyModule struct {
	// Path is the module as named; File the file it leads to, which is
	// the one loaded; SHA256 that file's hex SHA-256.
	Path, File, SHA256 string
}

// CheckKeyModule returns the module a key source in a PKCS#11 token will
// load, once it has passed the checks it must pass to be loaded (a
// library only root can change; see pkcs11.CheckModule), without loading
// it: what the operators are shown before the key is used. A key file has
// no module (nil).
func CheckKeyModule(ks KeySource) (*KeyModule, error) {
	m, ok := ks.(interface{ checkModule() (*KeyModule, error) })
	if !ok {
		return nil, nil
	}
	return m.checkModule()
}

// pkcs11URI is the RFC 7512 URI of the private key r names.
func pkcs11URI(r *PKCS11Ref) string {
	var b strings.Builder
	b.WriteString("pkcs11:")
	attr := func(name, value string) {
		if value == "" {
			return
		}
		if !strings.HasSuffix(b.String(), ":") {
			b.WriteByte(';')
		}
		b.WriteString(name + "=" + uriEscape(value))
	}
	attr("token", r.TokenLabel)
	attr("serial", r.TokenSerial)
	attr("object", r.KeyLabel)
	if id, err := hex.DecodeString(r.KeyID); err == nil && len(id) > 0 {
		// Every byte percent-encoded: the CKA_ID reads as the hex the
		// tools print.
		b.WriteString(";id=")
		for _, c := range id {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	attr("type", "private")
	return b.String()
}

// uriEscape percent-encodes every byte of s but RFC 3986's unreserved
// characters, which RFC 7512 path attribute values may hold as they are.
func uriEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}
