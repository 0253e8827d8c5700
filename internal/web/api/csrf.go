package api

import (
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// A browser that holds a client certificate for this server sends it with
// any request a foreign page triggers. A cross-site page can POST without a
// CORS preflight only with a "simple" Content-Type (form-urlencoded,
// multipart/form-data, text/plain) or with no body at all, and a browser
// always labels such a request with Origin and Sec-Fetch-Site. So a write
// must carry a JSON (or, where the route reads YAML, a YAML) Content-Type
// whenever it has a body, and must not come from a foreign origin. The
// CLI, the agent and scripts send no Origin and no Sec-Fetch-Site, and set
// application/json on every body.

// jsonType is the media type every API body is written in.
const jsonType = "application/json"

// yamlTypes are the media types of a YAML body, which the profile routes
// also read (profile create -f p.yaml). Neither is one a browser may send
// cross-site without a preflight.
func yamlTypes() []string { return []string{"application/yaml", "application/x-yaml"} }

// acceptingBody returns rt that also accepts a body of the media types
// extra, beyond application/json.
func acceptingBody(rt Route, extra ...string) Route {
	rt.bodyTypes = extra
	return rt
}

// unsafeMethod reports a method that may change state.
func unsafeMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// writeCheck refuses a state-changing request that a cross-site page could
// have sent: 403 for a foreign Origin or a Sec-Fetch-Site other than
// same-origin/none, 415 for a body without an accepted Content-Type. It
// returns 0 when the request may proceed, else the status, the error label
// and a detail saying how to fix the request.
func (h *Handler) writeCheck(r *http.Request, extraTypes []string) (int, string, string) {
	if !unsafeMethod(r.Method) {
		return 0, "", ""
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return http.StatusForbidden, "cross-site request refused",
			fmt.Sprintf("the browser labelled this %s request Sec-Fetch-Site: %s; state-changing API calls are accepted only from API clients or this server's own origin", r.Method, truncate(site, 40))
	}
	if origin, ok := r.Header["Origin"]; ok {
		o := ""
		if len(origin) > 0 {
			o = origin[0]
		}
		if len(origin) != 1 || !h.allowedOrigin(o, r.Host) {
			return http.StatusForbidden, "cross-origin request refused",
				fmt.Sprintf("Origin %q is not this server's origin; state-changing API calls are accepted only from API clients (which send no Origin), this server's own origin or acme.base_url", truncate(o, 200))
		}
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		// A bodiless write (disable, approve, run a job) needs no type;
		// a body without one is refused rather than guessed at.
		if r.ContentLength == 0 {
			return 0, "", ""
		}
		return http.StatusUnsupportedMediaType, "unsupported content type",
			"a request body must be sent with Content-Type: application/json"
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return http.StatusUnsupportedMediaType, "unsupported content type",
			fmt.Sprintf("Content-Type %q cannot be parsed: %v; send application/json", truncate(ct, 100), err)
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return http.StatusUnsupportedMediaType, "unsupported content type",
				fmt.Sprintf("Content-Type parameter %s=%q is not accepted; send application/json (optionally charset=utf-8)", truncate(k, 40), truncate(v, 40))
		}
	}
	if mt == jsonType || slices.Contains(extraTypes, mt) {
		return 0, "", ""
	}
	want := jsonType
	if len(extraTypes) > 0 {
		want += " or " + strings.Join(extraTypes, " or ")
	}
	return http.StatusUnsupportedMediaType, "unsupported content type",
		fmt.Sprintf("Content-Type %s is not accepted on %s %s; send %s", truncate(mt, 100), r.Method, r.URL.Path, want)
}

// allowedOrigin reports whether o is the request's own origin
// (https://<Host> where Host names the server's certificate) or one of
// Deps.Origins, compared as scheme://host[:port] in lower case.
func (h *Handler) allowedOrigin(o, host string) bool {
	n, ok := normalOrigin(o)
	if !ok {
		return false
	}
	if own, ok := normalOrigin("https://" + host); ok && own == n {
		u, _ := url.Parse(own)
		for _, name := range h.d.OwnHosts {
			if strings.EqualFold(strings.Trim(name, "[]"), u.Hostname()) {
				return true
			}
		}
	}
	for _, a := range h.d.Origins {
		if m, ok := normalOrigin(a); ok && m == n {
			return true
		}
	}
	return false
}

// normalOrigin reduces a URL or an Origin header to scheme://host[:port],
// dropping the scheme's default port. "null" and anything that is not an
// http(s) origin are not origins.
func normalOrigin(s string) (string, bool) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return "", false
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if (u.Scheme == "https" && port == "443") || (u.Scheme == "http" && port == "80") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return u.Scheme + "://" + host, true
}
