package validate

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/miekg/dns"
)

// maxTXTShown is how many wrong TXT values a failure lists.
const maxTXTShown = 3

// dns01 looks for base64url(SHA-256(keyAuth)) in a TXT record at
// _acme-challenge.VALUE (RFC 8555 §8.4).
func (v *Validator) dns01(ctx context.Context, id identifier, _, keyAuth string) error {
	name := "_acme-challenge." + id.value
	digest := sha256.Sum256([]byte(keyAuth))
	want := base64.RawURLEncoding.EncodeToString(digest[:])

	r, err := v.query(ctx, name, dns.TypeTXT)
	if err != nil {
		return dnsError(ctx, "looking up TXT for "+name, err)
	}
	switch r.Rcode {
	case dns.RcodeSuccess, dns.RcodeNameError:
	default:
		return newError(typeDNS, nil, "%s looking up TXT for %s", dns.RcodeToString[r.Rcode], name)
	}
	// A CNAME at the name is followed by the resolver; every TXT in the
	// answer belongs to the chain it returned.
	var seen []string
	for _, rr := range r.Answer {
		if txt, ok := rr.(*dns.TXT); ok {
			value := strings.Join(txt.Txt, "")
			if value == want {
				return nil
			}
			seen = append(seen, value)
		}
	}
	if len(seen) == 0 {
		return newError(typeUnauthorized, nil, "no TXT record at %s", name)
	}
	shown := make([]string, 0, maxTXTShown)
	for _, s := range seen[:min(len(seen), maxTXTShown)] {
		shown = append(shown, fmt.Sprintf("%q", clip(s)))
	}
	more := ""
	if n := len(seen) - maxTXTShown; n > 0 {
		more = fmt.Sprintf(" and %d more", n)
	}
	return newError(typeUnauthorized, nil, "incorrect TXT record at %s: expected %q, found %s%s",
		name, want, strings.Join(shown, ", "), more)
}
