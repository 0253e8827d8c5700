package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/lifecycle"
)

// Webhook request headers.
const (
	HeaderSignature = "X-Certwright-Signature" // "sha256=" + hex HMAC-SHA256 of the body
	HeaderAlertID   = "X-Certwright-Alert-Id"
	HeaderEvent     = "X-Certwright-Event" // the alert kind
)

const (
	defaultWebhookTimeout = 10 * time.Second
	// maxWebhookResponse is how much of a response body is read.
	maxWebhookResponse = 4 << 10
	// maxQuoted is how much of a response body an error quotes.
	maxQuoted = 200
	// maxHeaders caps the extra headers of one webhook.
	maxHeaders = 32
)

// reservedHeaders are set by the channel itself and may not be configured.
var reservedHeaders = []string{
	"Host", "Content-Type", "Content-Length", "Transfer-Encoding", "Connection",
	"User-Agent", HeaderSignature, HeaderAlertID, HeaderEvent,
}

// WebhookConfig configures a webhook channel.
type WebhookConfig struct {
	Name    string
	URL     string            // http:// or https:// absolute
	Headers map[string]string // extra headers (e.g. auth); values never logged
	// Secret, when set, signs the body: HMAC-SHA256 in
	// X-Certwright-Signature: sha256=<hex>.
	Secret  []byte
	RootCAs *x509.CertPool // nil: system roots
	Timeout time.Duration  // per attempt; 0: 10s
}

// Webhook posts alerts as JSON, {"text": Text(a), "alert": a}, which Slack,
// Mattermost and Microsoft Teams incoming webhooks accept as a message.
type Webhook struct {
	name     string
	url      string
	shownURL string // for errors: the URL without path, query or user info
	headers  map[string]string
	secret   []byte
	timeout  time.Duration
	client   *http.Client
	secrets  []string // redacted from quoted responses
}

var _ Channel = (*Webhook)(nil)

// NewWebhook checks cfg and returns the channel.
func NewWebhook(cfg WebhookConfig) (*Webhook, error) {
	const typ = "webhook"
	if err := validateName(typ, cfg.Name); err != nil {
		return nil, err
	}
	if hasCRLF(cfg.URL) || strings.ContainsAny(cfg.URL, " \t") {
		return nil, configErr(typ, cfg.Name, "url contains white space or a line break")
	}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		// url.Parse quotes the URL, which may hold a token: say less.
		return nil, configErr(typ, cfg.Name, "url is not a valid URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, configErr(typ, cfg.Name, "url scheme must be http or https, not %q", u.Scheme)
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, configErr(typ, cfg.Name, "url has no host")
	}
	if u.Fragment != "" {
		return nil, configErr(typ, cfg.Name, "url must not have a #fragment")
	}
	if cfg.Timeout < 0 {
		return nil, configErr(typ, cfg.Name, "timeout must not be negative")
	}
	if len(cfg.Headers) > maxHeaders {
		return nil, configErr(typ, cfg.Name, "%d headers, at most %d allowed", len(cfg.Headers), maxHeaders)
	}
	w := &Webhook{
		name:     cfg.Name,
		url:      u.String(),
		shownURL: u.Scheme + "://" + u.Host,
		headers:  make(map[string]string, len(cfg.Headers)),
		secret:   bytes.Clone(cfg.Secret),
		timeout:  cfg.Timeout,
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		w.shownURL += "/…"
	}
	if w.timeout == 0 {
		w.timeout = defaultWebhookTimeout
	}
	for _, k := range slices.Sorted(maps.Keys(cfg.Headers)) {
		v := cfg.Headers[k]
		if !validHeaderName(k) {
			return nil, configErr(typ, cfg.Name, "header name %q is not a valid HTTP header name", k)
		}
		canon := textproto.CanonicalMIMEHeaderKey(k)
		if slices.Contains(reservedHeaders, canon) {
			return nil, configErr(typ, cfg.Name, "header %q is set by Certwright and cannot be configured", canon)
		}
		if _, dup := w.headers[canon]; dup {
			return nil, configErr(typ, cfg.Name, "header %q given twice", canon)
		}
		// Never quote the value: it is usually a credential.
		if !validHeaderValue(v) {
			return nil, configErr(typ, cfg.Name, "header %q: value contains a line break or control character", canon)
		}
		w.headers[canon] = v
		w.secrets = append(w.secrets, v)
		// A credential often appears after its scheme ("Bearer xyz"):
		// redact the token on its own too.
		if _, tok, ok := strings.Cut(v, " "); ok && len(tok) >= 8 {
			w.secrets = append(w.secrets, tok)
		}
	}
	if len(w.secret) > 0 {
		w.secrets = append(w.secrets, string(w.secret))
	}
	if u.User != nil {
		if p, ok := u.User.Password(); ok {
			w.secrets = append(w.secrets, p)
		}
	}
	// Chat services put their token in the URL's path or query.
	for _, part := range []string{u.EscapedPath(), u.Path, u.RawQuery} {
		if len(part) > 1 {
			w.secrets = append(w.secrets, part)
		}
	}
	// Longest first, so that a value containing another is redacted whole.
	slices.SortFunc(w.secrets, func(a, b string) int { return len(b) - len(a) })

	dialer := &net.Dialer{Timeout: w.timeout, KeepAlive: 30 * time.Second}
	w.client = &http.Client{
		Transport: &http.Transport{
			Proxy:                  http.ProxyFromEnvironment,
			DialContext:            dialer.DialContext,
			TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: cfg.RootCAs},
			TLSHandshakeTimeout:    w.timeout,
			ForceAttemptHTTP2:      true,
			MaxIdleConnsPerHost:    2,
			IdleConnTimeout:        90 * time.Second,
			MaxResponseHeaderBytes: 64 << 10,
		},
		// A redirect is reported, never followed: following one would
		// re-send the alert and its headers somewhere not configured.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return w, nil
}

// Name returns the channel's name.
func (w *Webhook) Name() string { return w.name }

// webhookBody is what a webhook receives.
type webhookBody struct {
	Text  string          `json:"text"`
	Alert lifecycle.Alert `json:"alert"`
}

// Send posts a once; it does not retry.
func (w *Webhook) Send(ctx context.Context, a lifecycle.Alert) error {
	body, err := json.Marshal(webhookBody{Text: Text(a), Alert: a})
	if err != nil {
		return w.fail(true, 0, "cannot encode alert as JSON", err)
	}
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return w.fail(true, 0, "cannot build request", nil)
	}
	for k, v := range w.headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "certwright")
	req.Header.Set(HeaderAlertID, headerSafe(a.ID))
	req.Header.Set(HeaderEvent, headerSafe(string(a.Kind)))
	if len(w.secret) > 0 {
		req.Header.Set(HeaderSignature, Sign(w.secret, body))
	}

	resp, err := w.client.Do(req)
	if err != nil {
		// *url.Error quotes the full URL, which may carry a token in its
		// path (Slack's does): keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		msg := "POST " + w.shownURL + " failed"
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
			msg = fmt.Sprintf("POST %s: no answer within %s", w.shownURL, w.timeout)
		}
		return w.fail(false, 0, msg, err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, maxWebhookResponse))

	code := resp.StatusCode
	switch {
	case code >= 200 && code <= 299:
		return nil
	case code >= 300 && code <= 399:
		loc := resp.Header.Get("Location")
		return w.fail(true, code, fmt.Sprintf("POST %s answered %s, a redirect to %s, which is not followed: configure the final URL",
			w.shownURL, resp.Status, excerpt([]byte(loc), maxQuoted, w.secrets)), nil)
	default:
		permanent := code >= 400 && code <= 499 && code != http.StatusRequestTimeout && code != http.StatusTooManyRequests
		msg := fmt.Sprintf("POST %s answered %s", w.shownURL, statusText(resp))
		if len(bytes.TrimSpace(answer)) > 0 {
			msg += ": " + excerpt(bytes.TrimSpace(answer), maxQuoted, w.secrets)
		}
		return w.fail(permanent, code, msg, nil)
	}
}

func (w *Webhook) fail(permanent bool, code int, msg string, err error) error {
	return &Error{Channel: w.name, Type: "webhook", Permanent: permanent, Code: code, Msg: msg, Err: err}
}

// statusText is "404 Not Found", without trusting the server's reason
// phrase.
func statusText(resp *http.Response) string {
	if t := http.StatusText(resp.StatusCode); t != "" {
		return fmt.Sprintf("%d %s", resp.StatusCode, t)
	}
	return fmt.Sprintf("%d", resp.StatusCode)
}

// Sign returns the X-Certwright-Signature value for body: "sha256=" and
// the hex HMAC-SHA256 of body under secret. Receivers recompute it and
// compare in constant time (see VerifySignature).
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// VerifySignature reports, in constant time, whether sig is the signature
// of body under secret.
func VerifySignature(secret, body []byte, sig string) bool {
	return hmac.Equal([]byte(Sign(secret, body)), []byte(sig))
}

// validHeaderName reports whether s is an RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validHeaderValue reports whether s can be sent as a header value: no
// control characters other than tab, at most 8 KiB.
func validHeaderValue(s string) bool {
	if len(s) > 8<<10 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// headerSafe keeps the printable ASCII of s (at most 200 bytes), so that an
// alert field can never split a header.
func headerSafe(s string) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < 200; i++ {
		if c := s[i]; c > ' ' && c < 0x7f {
			b.WriteByte(c)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}
