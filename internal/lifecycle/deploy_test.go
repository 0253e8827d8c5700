package lifecycle

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCleanText(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in, want string
		n              int
	}{
		{"plain", "reload failed", "reload failed", 100},
		{"newlines and tabs collapse", "a\r\n\tb", "a b", 100},
		{"escape sequence", "red\x1b[31malert", "red [31malert", 100},
		{"bidi override", "abc\u202edef", "abc def", 100},
		{"invalid UTF-8", "a\xffb", "a b", 100},
		{"cut on a character boundary", "ééééé", "é...", 6},
		{"trimmed", "  x  ", "x", 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := cleanText(tc.in, tc.n)
			if got != tc.want || len(got) > tc.n || !utf8.ValidString(got) {
				t.Errorf("cleanText(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
			}
		})
	}
	long := cleanText(strings.Repeat("x", 5000), maxDeployError)
	if len(long) != maxDeployError || !strings.HasSuffix(long, "...") {
		t.Errorf("5000 bytes cleaned to %d bytes", len(long))
	}
}

func TestCheckHost(t *testing.T) {
	t.Parallel()
	for _, h := range []string{"web-1", "web-1.example.internal", "10.0.0.1", "fe80::1", "host_name"} {
		if err := checkHost(h); err != nil {
			t.Errorf("checkHost(%q) = %v", h, err)
		}
	}
	for _, h := range []string{"", "a b", "web\n1", "web<script>", strings.Repeat("a", 254), "wéb"} {
		if err := checkHost(h); err == nil {
			t.Errorf("checkHost(%q) accepted", h)
		}
	}
}
