package notifytest

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"time"
)

const maxWebhookBody = 1 << 20

// WebhookOptions configures StartWebhook.
type WebhookOptions struct {
	// Status answers every request; 0: 200.
	Status int
	// StatusFunc, when set, picks the status of the nth well-formed,
	// correctly signed request (from 1) instead; a 0 result means Status.
	// FailFirst builds the common one.
	StatusFunc func(n int) int
	// Secret, when set, is checked against X-Certwright-Signature; a
	// missing or wrong signature is answered 401.
	Secret []byte
	// Delay holds every answer back, for timeout tests; a client that
	// gives up or Close cuts it short.
	Delay time.Duration
	// TLS serves HTTPS with a self-signed certificate for 127.0.0.1
	// (see CertPEM).
	TLS bool
}

// FailFirst returns a StatusFunc that answers the first n well-formed,
// signed requests with status and later ones with Status.
func FailFirst(n, status int) func(int) int {
	return func(i int) int {
		if i <= n {
			return status
		}
		return 0
	}
}

// WebhookRequest is one request the receiver got.
type WebhookRequest struct {
	Header http.Header
	Body   []byte
	Text   string          // the body's "text"
	Alert  json.RawMessage // the body's "alert"
	Status int             // what the receiver answered
}

// WebhookReceiver is a real HTTP server on 127.0.0.1 that records posts.
type WebhookReceiver struct {
	URL string

	opts    WebhookOptions
	certPEM []byte
	srv     *http.Server
	ln      net.Listener
	served  chan struct{}
	closing chan struct{}
	once    sync.Once
	// onRequest, when set, runs before a request is answered; an error
	// answers 500.
	onRequest func(n int, r WebhookRequest) error

	mu      sync.Mutex
	reqs    []WebhookRequest
	valid   int // requests that passed the signature and JSON checks
	changed chan struct{}
}

// StartWebhook starts a receiver on 127.0.0.1:0; its URL ends in /hook.
func StartWebhook(opts WebhookOptions) (*WebhookReceiver, error) {
	return startWebhook(opts, nil)
}

func startWebhook(opts WebhookOptions, onRequest func(int, WebhookRequest) error) (*WebhookReceiver, error) {
	if opts.Status == 0 {
		opts.Status = http.StatusOK
	}
	if opts.Status < 100 || opts.Status > 599 {
		return nil, fmt.Errorf("notifytest: status %d is not an HTTP status", opts.Status)
	}
	w := &WebhookReceiver{
		opts: opts, served: make(chan struct{}), closing: make(chan struct{}),
		onRequest: onRequest, changed: make(chan struct{}),
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("notifytest: listen: %w", err)
	}
	scheme := "http"
	if opts.TLS {
		cert, certPEM, err := serverCert(tls.Certificate{})
		if err != nil {
			ln.Close()
			return nil, err
		}
		w.certPEM = certPEM
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
		scheme = "https"
	}
	w.ln = ln
	w.URL = scheme + "://" + ln.Addr().String() + "/hook"
	w.srv = &http.Server{
		Handler:           http.HandlerFunc(w.serveHTTP),
		ReadHeaderTimeout: serverTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	go func() {
		defer close(w.served)
		_ = w.srv.Serve(ln)
	}()
	return w, nil
}

func (w *WebhookReceiver) serveHTTP(rw http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(rw, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, maxWebhookBody))
	if err != nil {
		http.Error(rw, "body too large or unreadable", http.StatusRequestEntityTooLarge)
		return
	}
	req := WebhookRequest{Header: r.Header.Clone(), Body: body}
	var parsed struct {
		Text  string          `json:"text"`
		Alert json.RawMessage `json:"alert"`
	}
	jsonErr := json.Unmarshal(body, &parsed)
	req.Text, req.Alert = parsed.Text, parsed.Alert

	w.mu.Lock()
	n := len(w.reqs) + 1
	switch {
	case len(w.opts.Secret) > 0 && !validSignature(w.opts.Secret, body, r.Header.Get("X-Certwright-Signature")):
		req.Status = http.StatusUnauthorized
	case jsonErr != nil:
		req.Status = http.StatusBadRequest
	default:
		w.valid++
		req.Status = w.opts.Status
		if w.opts.StatusFunc != nil {
			if st := w.opts.StatusFunc(w.valid); st != 0 {
				req.Status = st
			}
		}
	}
	var hookErr error
	if w.onRequest != nil {
		hookErr = w.onRequest(n, req)
	}
	w.reqs = append(w.reqs, req)
	close(w.changed)
	w.changed = make(chan struct{})
	w.mu.Unlock()

	if w.opts.Delay > 0 {
		t := time.NewTimer(w.opts.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		case <-w.closing:
			return
		}
	}
	switch {
	case hookErr != nil:
		http.Error(rw, "cannot store request", http.StatusInternalServerError)
	case req.Status == http.StatusUnauthorized:
		http.Error(rw, "bad or missing X-Certwright-Signature", req.Status)
	case req.Status == http.StatusBadRequest && jsonErr != nil:
		http.Error(rw, "body is not JSON", req.Status)
	case req.Status >= 300 && req.Status <= 399:
		rw.Header().Set("Location", "http://127.0.0.1:9/elsewhere")
		rw.WriteHeader(req.Status)
	default:
		rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
		rw.WriteHeader(req.Status)
		fmt.Fprintf(rw, "notifytest: answered %d\n", req.Status)
	}
}

func validSignature(secret, body []byte, got string) bool {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	want := "sha256=" + hex.EncodeToString(m.Sum(nil))
	return hmac.Equal([]byte(want), []byte(got))
}

// Requests returns the requests received so far.
func (w *WebhookReceiver) Requests() []WebhookRequest {
	w.mu.Lock()
	defer w.mu.Unlock()
	return cloneRequests(w.reqs)
}

// Wait returns the requests once at least n have arrived, or fails when
// ctx ends first.
func (w *WebhookReceiver) Wait(ctx context.Context, n int) ([]WebhookRequest, error) {
	for {
		w.mu.Lock()
		got, ch := len(w.reqs), w.changed
		if got >= n {
			defer w.mu.Unlock()
			return cloneRequests(w.reqs), nil
		}
		w.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("notifytest: webhook receiver got %d of %d requests: %w", got, n, ctx.Err())
		}
	}
}

// CertPEM returns the receiver's certificate when it serves HTTPS.
func (w *WebhookReceiver) CertPEM() []byte { return bytes.Clone(w.certPEM) }

// Close stops the receiver and drops its connections.
func (w *WebhookReceiver) Close() error {
	w.once.Do(func() { close(w.closing) })
	err := w.srv.Close()
	w.ln.Close() // in case Close ran before Serve took the listener
	<-w.served
	if errors.Is(err, http.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

func cloneRequests(in []WebhookRequest) []WebhookRequest {
	out := make([]WebhookRequest, len(in))
	for i, r := range in {
		r.Header = r.Header.Clone()
		r.Body = bytes.Clone(r.Body)
		r.Alert = bytes.Clone(r.Alert)
		out[i] = r
	}
	return out
}
