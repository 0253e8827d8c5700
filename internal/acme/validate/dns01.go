package validate

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"log/slog"
	"strings"

	"github.com/miekg/dns"
)

// dns01 looks for base64url(SHA-256(keyAuth)) in a TXT record at
// _acme-challenge.VALUE (RFC 8555 §8.4). A failure counts the TXT records
// found without quoting them (they go to the server's log only).
func (v *Validator) dns01(ctx context.Context, at *attempt, id identifier, _, keyAuth string) error {
	name := "_acme-challenge." + id.value
	at.add(name)
	want := DNS01Value(keyAuth)

	r, err := v.query(ctx, name, dns.TypeTXT)
	if err != nil {
		return dnsError(ctx, "looking up TXT for "+name, err)
	}
	switch r.Rcode {
	case dns.RcodeSuccess, dns.RcodeNameError:
	default:
		return newError(typeDNS, nil, "%s looking up TXT for %s", dns.RcodeToString[r.Rcode], name)
	}
	found, n, seen := matchTXT(r, want)
	if found {
		return nil
	}
	if n == 0 {
		return newError(typeUnauthorized, nil, "no TXT record at %s", name)
	}
	v.log.LogAttrs(ctx, slog.LevelInfo, "acme dns-01 TXT records not accepted",
		slog.String("name", name), slog.Any("values", seen))
	return newError(typeUnauthorized, nil, "incorrect TXT record at %s: found %d TXT record(s), none is the expected %q", name, n, want)
}

// matchTXT looks through an answer's TXT records for want; when it is not
// there, n counts the records and others holds the first few (clipped) for
// the log. A CNAME at the name is followed by the
// resolver; every TXT in the answer belongs to the chain it returned.
func matchTXT(r *dns.Msg, want string) (found bool, n int, others []string) {
	for _, rr := range r.Answer {
		if txt, ok := rr.(*dns.TXT); ok {
			if TXTMatches(txt.Txt, want) {
				return true, 0, nil
			}
			n++
			if len(others) < 10 {
				others = append(others, clip(strings.Join(txt.Txt, "")))
			}
		}
	}
	return false, n, others
}

// DNS01Value is the TXT record value that proves keyAuth (RFC 8555 §8.4):
// base64url(SHA-256(keyAuth)).
func DNS01Value(keyAuth string) string {
	digest := sha256.Sum256([]byte(keyAuth))
	return base64.RawURLEncoding.EncodeToString(digest[:])
}

// TXTMatches reports whether a TXT record, given as its character-strings,
// is want. A record longer than 255 bytes arrives split; the strings are
// joined first (RFC 8555 §8.4 values are 43 bytes, so this only matters to
// be exact).
func TXTMatches(strs []string, want string) bool {
	return want != "" && strings.Join(strs, "") == want
}
