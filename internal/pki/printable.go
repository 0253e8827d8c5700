package pki

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Printable escapes what a terminal or a database would act on in text
// someone else chose (a certificate's names, a scanned peer's answer):
// control characters (C0, DEL, C1), the other runes that print nothing
// (bidirectional overrides, zero-width marks, spaces other than U+0020)
// and invalid UTF-8 become Go escapes (\x1b, \n, \u202e, \xff). Printable
// text, in any script, is returned unchanged.
func Printable(s string) string {
	if !needsEscape(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b.WriteString(`\x`)
			b.WriteString(strconv.FormatUint(uint64(s[i])>>4, 16))
			b.WriteString(strconv.FormatUint(uint64(s[i])&0xf, 16))
		case strconv.IsPrint(r):
			b.WriteString(s[i : i+n])
		default:
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		}
		i += n
	}
	return b.String()
}

func needsEscape(s string) bool {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && n == 1) || !strconv.IsPrint(r) {
			return true
		}
		i += n
	}
	return false
}

// PrintableAll is Printable of each string, in a new slice.
func PrintableAll(ss []string) []string {
	if ss == nil {
		return nil
	}
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = Printable(s)
	}
	return out
}
