package console

import "testing"

// TestLocalPath: a sign-in's next page is a path on this server, never a
// way off it, however the browser would read it.
func TestLocalPath(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"/":                          "/",
		"/certificates?status=valid": "/certificates?status=valid",
		"/certificates/01ab":         "/certificates/01ab",
		"":                           "/",
		"https://evil.example/":      "/",
		"//evil.example":             "/",
		"/\t/evil.example":           "/",
		"/\n/evil.example":           "/",
		"/\r\n/evil.example":         "/",
		"/\\evil.example":            "/",
		"/\\\\evil.example":          "/",
		"\\/evil.example":            "/",
		"/%2f/evil.example":          "/",
		"/\x7f":                      "/",
		"evil.example":               "/",
		"/login?next=//evil.example": "/login?next=//evil.example",
	} {
		if got := localPath(in); got != want {
			t.Errorf("localPath(%q) = %q, want %q", in, got, want)
		}
	}
}
