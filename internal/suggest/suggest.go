// Package suggest names the closest valid name to a mistyped one (a
// command, a flag, a profile), so that an error can say "did you mean".
package suggest

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// maxInput bounds the names compared: edit distance costs the product of
// the lengths, and a mistyped name is short.
const maxInput = 128

// Closest returns the valid name nearest to got by edit distance
// (case-insensitive), when it is close enough to be a typo: at most a
// third of the longer name's letters, and at least one, differ. A valid
// name that starts with got (an abbreviation) also counts.
func Closest(got string, valid []string) (string, bool) {
	if got == "" || len(got) > maxInput {
		return "", false
	}
	g := strings.ToLower(got)
	best, bestD := "", -1
	for _, v := range valid {
		if len(v) > maxInput {
			continue
		}
		lv := strings.ToLower(v)
		d := distance(g, lv)
		if strings.HasPrefix(lv, g) && utf8.RuneCountInString(g) >= 2 {
			d = min(d, 1)
		}
		limit := max(1, max(utf8.RuneCountInString(g), utf8.RuneCountInString(lv))/3)
		if d <= limit && (bestD < 0 || d < bestD) {
			best, bestD = v, d
		}
	}
	return best, bestD >= 0
}

// Hint says which valid name was probably meant, then lists them all:
// `did you mean "web_server"? valid: code_signing, web_server`. With no
// valid names it says so.
func Hint(got string, valid []string) string {
	if len(valid) == 0 {
		return "there are none"
	}
	list := "valid: " + strings.Join(valid, ", ")
	if c, ok := Closest(got, valid); ok {
		return fmt.Sprintf("did you mean %q? %s", c, list)
	}
	return list
}

// distance is the optimal string alignment distance between a and b, by
// rune: insertions, deletions, substitutions and swaps of two neighbours
// ("lsit" for "list") each cost one.
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}
