package pki

import "testing"

func TestPrintable(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"CN=svc.example.com":            "CN=svc.example.com",
		"Müller GmbH, 東京":               "Müller GmbH, 東京",
		"evil\x00.test":                 `evil\x00.test`,
		"x\x1b]0;owned\x07\x1b[2J":      `x\x1b]0;owned\a\x1b[2J`,
		"line\r\nFAKE\tx":               `line\r\nFAKE\tx`,
		"\u202egnp.exe":                 `\u202egnp.exe`,
		"zero\u200bwidth\u00a0nbsp\x7f": `zero\u200bwidth\u00a0nbsp\x7f`,
		"c1\u009b31m":                   `c1\u009b31m`,
		"bad\xffutf8\xc3":               `bad\xffutf8\xc3`,
		"":                              "",
	} {
		if got := Printable(in); got != want {
			t.Errorf("Printable(%q) = %q, want %q", in, got, want)
		}
	}
	if got := PrintableAll([]string{"a\nb", "c"}); len(got) != 2 || got[0] != `a\nb` || got[1] != "c" {
		t.Errorf("PrintableAll = %q", got)
	}
}
