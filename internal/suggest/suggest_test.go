package suggest

import (
	"strings"
	"testing"
)

func TestClosest(t *testing.T) {
	t.Parallel()
	valid := []string{"list", "show", "issue", "sign", "revoke", "web_server", "internal_service"}
	for _, tc := range []struct {
		got, want string
	}{
		{"lsit", "list"},
		{"shwo", "show"},
		{"isue", "issue"},
		{"Revoke", "revoke"},
		{"web-server", "web_server"},
		{"internal", "internal_service"}, // an abbreviation
		{"webserver", "web_server"},
		{"xyz", ""},
		{"", ""},
		{"q", ""},
		{strings.Repeat("a", maxInput+1), ""},
	} {
		got, ok := Closest(tc.got, valid)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("Closest(%q) = %q, %v; want %q", tc.got, got, ok, tc.want)
		}
	}
}

func TestHint(t *testing.T) {
	t.Parallel()
	if h := Hint("lsit", []string{"list", "show"}); h != `did you mean "list"? valid: list, show` {
		t.Errorf("Hint = %q", h)
	}
	if h := Hint("zzz", []string{"list", "show"}); h != "valid: list, show" {
		t.Errorf("Hint without a close name = %q", h)
	}
	if h := Hint("zzz", nil); h != "there are none" {
		t.Errorf("Hint with no names = %q", h)
	}
}

func TestDistance(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"a", "", 1}, {"lsit", "list", 1}, {"kitten", "sitting", 3}, {"flaw", "lawn", 2}, {"é", "e", 1},
	} {
		if d := distance(tc.a, tc.b); d != tc.want {
			t.Errorf("distance(%q, %q) = %d, want %d", tc.a, tc.b, d, tc.want)
		}
	}
}
