package metrics

import (
	"net/http"
	"strings"
)

// ACME order results, the values of certwright_acme_orders_total{result}.
const (
	orderCreated = "created" // new-order answered 201
	orderValid   = "valid"   // finalize answered 200: the certificate was issued
	orderFailed  = "failed"  // finalize answered an error
)

// acmeEndpoints maps the shape of the path after /acme/{provisioner}/ to
// the endpoint label: "*" matches one non-empty segment (an ID). The
// label set is fixed; a path of any other shape is "other".
var acmeEndpoints = []struct {
	path     []string
	endpoint string
}{
	{[]string{"directory"}, "directory"},
	{[]string{"new-nonce"}, "new-nonce"},
	{[]string{"new-account"}, "new-account"},
	{[]string{"new-order"}, "new-order"},
	{[]string{"revoke-cert"}, "revoke-cert"},
	{[]string{"key-change"}, "key-change"},
	{[]string{"renewal-info", "*"}, "renewal-info"},
	{[]string{"account", "*"}, "account"},
	{[]string{"account", "*", "orders"}, "account"},
	{[]string{"order", "*"}, "order"},
	{[]string{"order", "*", "finalize"}, "finalize"},
	{[]string{"authz", "*"}, "authz"},
	{[]string{"chall", "*", "*"}, "challenge"},
	{[]string{"cert", "*"}, "cert"},
}

// acmeEndpoint classifies a request path under /acme/{provisioner}/.
func acmeEndpoint(path string) string {
	rest, ok := strings.CutPrefix(path, "/acme/")
	if !ok {
		return "other"
	}
	_, rest, ok = strings.Cut(rest, "/") // the provisioner's name
	if !ok {
		return "other"
	}
	segs := strings.Split(rest, "/")
next:
	for _, e := range acmeEndpoints {
		if len(e.path) != len(segs) {
			continue
		}
		for i, p := range e.path {
			if segs[i] == "" || p != "*" && p != segs[i] {
				continue next
			}
		}
		return e.endpoint
	}
	return "other"
}

// statusClasses are the status_class label values, by status / 100.
var statusClasses = [...]string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"}

func statusClass(code int) string {
	if c := code / 100; c >= 1 && c < len(statusClasses) {
		return statusClasses[c]
	}
	return statusClasses[0]
}

// ACMEMiddleware counts ACME requests by endpoint and status class, and
// orders created and finalized, around next (the ACME handler mounted at
// /acme/). Labels come from a fixed set, never from the raw path.
func (m *Metrics) ACMEMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		code := sw.status
		if code == 0 {
			code = http.StatusOK
		}
		ep := acmeEndpoint(r.URL.Path)
		m.acmeRequests.WithLabelValues(ep, statusClass(code)).Inc()
		if r.Method != http.MethodPost {
			return
		}
		switch {
		case ep == "new-order" && code == http.StatusCreated:
			m.acmeOrders.WithLabelValues(orderCreated).Inc()
		case ep == "finalize" && code == http.StatusOK:
			m.acmeOrders.WithLabelValues(orderValid).Inc()
		case ep == "finalize" && code >= 400:
			m.acmeOrders.WithLabelValues(orderFailed).Inc()
		}
	})
}

// statusWriter remembers the status code written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
