package oidc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Bounds on the claims taken from an ID token.
const (
	MaxGroups       = 256
	MaxGroupBytes   = 256
	maxSubjectBytes = 255
	maxEmailBytes   = 320
	maxNameBytes    = 256
	maxIDTokenBytes = 64 << 10
)

// claimSet is what this package takes from a verified ID token's payload.
type claimSet struct {
	subject       string
	email         string
	emailVerified bool
	name          string
	groups        []string
	azp           string
	nonce         string
}

// parseClaims reads the claims of a verified ID token's payload: the
// subject from subjectClaim (a non-empty string), the groups from
// groupsClaim (absent, a string or a list of strings), email,
// email_verified, name, azp and nonce. Anything of the wrong type or out
// of bounds is an error saying which claim.
func parseClaims(payload []byte, subjectClaim, groupsClaim string) (*claimSet, error) {
	if len(payload) > maxIDTokenBytes {
		return nil, fmt.Errorf("claims larger than %d bytes", maxIDTokenBytes)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(payload, &m); err != nil {
		return nil, fmt.Errorf("claims are not a JSON object")
	}
	var c claimSet
	var err error
	if c.subject, err = stringClaim(m, subjectClaim, maxSubjectBytes); err != nil {
		return nil, err
	}
	if c.subject == "" {
		return nil, fmt.Errorf("no subject claim %s (set subject_claim to the claim that identifies a person)", quote(subjectClaim))
	}
	if err := plainText(subjectClaim, c.subject); err != nil {
		return nil, err
	}
	if c.email, err = stringClaim(m, "email", maxEmailBytes); err != nil {
		return nil, err
	}
	if c.email != "" {
		if a, err := mail.ParseAddress(c.email); err != nil || a.Address != c.email || a.Name != "" {
			return nil, fmt.Errorf("claim \"email\" is not a plain email address")
		}
	}
	if c.emailVerified, err = boolClaim(m, "email_verified"); err != nil {
		return nil, err
	}
	if c.name, err = stringClaim(m, "name", maxNameBytes); err != nil {
		return nil, err
	}
	c.name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, c.name)
	if c.groups, err = groupsOf(m[groupsClaim], groupsClaim); err != nil {
		return nil, err
	}
	if c.azp, err = stringClaim(m, "azp", maxSubjectBytes); err != nil {
		return nil, err
	}
	if c.nonce, err = stringClaim(m, "nonce", 1024); err != nil {
		return nil, err
	}
	return &c, nil
}

func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

// stringClaim returns claim k, "" when absent or null.
func stringClaim(m map[string]json.RawMessage, k string, maxBytes int) (string, error) {
	raw, ok := m[k]
	if !ok || isNull(raw) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("claim %s is %s, want a string", quote(k), jsonKind(raw))
	}
	if len(s) > maxBytes {
		return "", fmt.Errorf("claim %s is %d bytes long, at most %d", quote(k), len(s), maxBytes)
	}
	if !utf8.ValidString(s) {
		return "", fmt.Errorf("claim %s is not valid UTF-8", quote(k))
	}
	return s, nil
}

// boolClaim accepts true/false and, as some providers send them, the
// strings "true"/"false".
func boolClaim(m map[string]json.RawMessage, k string) (bool, error) {
	raw, ok := m[k]
	if !ok || isNull(raw) {
		return false, nil
	}
	var b bool
	if json.Unmarshal(raw, &b) == nil {
		return b, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if v, err := strconv.ParseBool(s); err == nil && (s == "true" || s == "false") {
			return v, nil
		}
	}
	return false, fmt.Errorf("claim %s is %s, want true or false", quote(k), jsonKind(raw))
}

// groupsOf reads a groups claim: absent or null is no group, a string is
// one group (some providers send a lone group so), a list of strings is
// the groups. The result is sorted and without duplicates.
func groupsOf(raw json.RawMessage, k string) ([]string, error) {
	if isNull(raw) {
		return nil, nil
	}
	var names []string
	var one string
	if json.Unmarshal(raw, &one) == nil {
		names = []string{one}
	} else {
		var list []json.RawMessage
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, fmt.Errorf("claim %s is %s, want a list of group names", quote(k), jsonKind(raw))
		}
		if len(list) > MaxGroups {
			return nil, fmt.Errorf("claim %s lists %d groups, at most %d", quote(k), len(list), MaxGroups)
		}
		for i, e := range list {
			var g string
			if err := json.Unmarshal(e, &g); err != nil {
				return nil, fmt.Errorf("claim %s: entry %d is %s, want a string", quote(k), i, jsonKind(e))
			}
			names = append(names, g)
		}
	}
	for i, g := range names {
		if g == "" || len(g) > MaxGroupBytes || !utf8.ValidString(g) {
			return nil, fmt.Errorf("claim %s: entry %d is empty, longer than %d bytes or not UTF-8", quote(k), i, MaxGroupBytes)
		}
		if err := plainText(k, g); err != nil {
			return nil, err
		}
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

// plainText refuses control characters, which have no place in an
// identifier and would garble logs and terminals.
func plainText(k, s string) error {
	if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return fmt.Errorf("claim %s holds a control character", quote(k))
	}
	return nil
}

func jsonKind(raw json.RawMessage) string {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 {
		return "empty"
	}
	switch t[0] {
	case '"':
		return "a string"
	case '[':
		return "a list"
	case '{':
		return "an object"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

// quote quotes untrusted text for a message, bounded.
func quote(s string) string {
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return strconv.QuoteToASCII(s)
}

// short renders an error from a library or a provider for a message:
// one line, printable, at most 200 bytes.
func short(err error) string {
	s := strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || !unicode.IsPrint(r) {
			return ' '
		}
		return r
	}, err.Error())
	if len(s) > 200 {
		s = strings.ToValidUTF8(s[:200], "") + "..."
	}
	return strings.TrimSpace(s)
}
