package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/web/apitypes"
)

// maxResponse bounds every answer read from the server.
const maxResponse = 1 << 20

// requestTimeout bounds one API call when the agent builds its own client.
const requestTimeout = 30 * time.Second

// ErrUnavailable marks a failure to reach the server, or a server error
// (5xx, 429): the files on disk are kept and the call is retried later.
var ErrUnavailable = errors.New("agent: server unavailable")

// RetryAfterError is a server's 503 or 429 that said when to come back
// (Retry-After): the agent waits that long before the retry, but no
// longer than its check interval.
type RetryAfterError struct {
	Err   error // matches ErrUnavailable
	After time.Duration
}

func (e *RetryAfterError) Error() string { return fmt.Sprintf("%v (retry after %s)", e.Err, e.After) }
func (e *RetryAfterError) Unwrap() error { return e.Err }

// maxRetryAfter bounds the wait a server can ask for.
const maxRetryAfter = 24 * time.Hour

// retryAfter parses a Retry-After header given in seconds (RFC 9110
// 10.2.3); 0 when absent or not seconds.
func retryAfter(v string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n <= 0 {
		return 0
	}
	return min(time.Duration(n)*time.Second, maxRetryAfter)
}

// ErrNotFound is what an API error with status 404 matches.
var ErrNotFound = errors.New("agent: not found")

// APIError is an error answer (4xx) of the server.
type APIError struct {
	Method, Path string
	Status       int
	Body         apitypes.Error
}

func (e *APIError) Error() string {
	body := e.Body
	if body.Error == "" {
		body.Error = strings.ToLower(http.StatusText(e.Status))
	}
	msg := body.Message()
	if e.Body.Rule != "" {
		msg += " (rule: " + e.Body.Rule + ")"
	}
	return fmt.Sprintf("agent: %s %s: %d %s", e.Method, e.Path, e.Status, msg)
}

// Is lets errors.Is(err, ErrNotFound) match a 404.
func (e *APIError) Is(target error) bool {
	return target == ErrNotFound && e.Status == http.StatusNotFound
}

// apiClient calls the few /api/v1 routes the agent needs.
type apiClient struct {
	base  string // server URL without a trailing slash
	token string // "" with mTLS
	http  *http.Client
	// now is the agent's clock, read when an answer arrives.
	now func() time.Time
}

// call sends in as JSON (nil: no body) and decodes a 2xx answer into out.
// It returns the status and the local time the answer arrived.
func (c *apiClient) call(ctx context.Context, method, path string, in, out any) (int, time.Time, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, time.Time{}, fmt.Errorf("agent: encode %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("agent: build request %s %s: %w", method, path, err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "certwright-agent")
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return 0, time.Time{}, ctx.Err()
		}
		// The URL carries no secret; name it once, not again in *url.Error.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, time.Time{}, fmt.Errorf("%w: %s %s: %w", ErrUnavailable, method, c.base+path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	arrived := c.now()
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("%w: %s %s: read answer: %w", ErrUnavailable, method, path, err)
	}
	if len(data) > maxResponse {
		return 0, time.Time{}, fmt.Errorf("agent: %s %s: answer larger than %d bytes", method, path, maxResponse)
	}
	if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
		err := fmt.Errorf("%w: %s %s: %s", ErrUnavailable, method, path, apitypes.StatusMessage(resp.StatusCode, data))
		if d := retryAfter(resp.Header.Get("Retry-After")); d > 0 {
			return 0, time.Time{}, &RetryAfterError{Err: err, After: d}
		}
		return 0, time.Time{}, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := &APIError{Method: method, Path: path, Status: resp.StatusCode}
		_ = json.Unmarshal(data, &e.Body)
		return 0, time.Time{}, e
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return 0, time.Time{}, fmt.Errorf("agent: %s %s: the server's answer is not the expected JSON: %w", method, path, err)
		}
	}
	return resp.StatusCode, arrived, nil
}

// renewalInfo asks when the certificate with this serial should be renewed.
func (c *apiClient) renewalInfo(ctx context.Context, serial string) (*apitypes.RenewalInfo, time.Time, error) {
	var info apitypes.RenewalInfo
	_, at, err := c.call(ctx, http.MethodGet, "/api/v1/certificates/"+url.PathEscape(serial)+"/renewal-info", nil, &info)
	if err != nil {
		return nil, time.Time{}, err
	}
	return &info, at, nil
}

// certificate reads the inventory record of a certificate.
func (c *apiClient) certificate(ctx context.Context, serial string) (*apitypes.Certificate, error) {
	var out apitypes.Certificate
	if _, _, err := c.call(ctx, http.MethodGet, "/api/v1/certificates/"+url.PathEscape(serial), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ErrHeldForApproval is returned when the profile holds requests for a
// second principal's approval: an agent cannot wait for that.
var ErrHeldForApproval = errors.New("agent: the request is held for approval")

// sign sends a CSR to be signed.
func (c *apiClient) sign(ctx context.Context, req *apitypes.SignRequest) (*apitypes.IssuedCertificate, error) {
	var out apitypes.IssuedCertificate
	status, _, err := c.call(ctx, http.MethodPost, "/api/v1/certificates/sign", req, &out)
	if err != nil {
		return nil, err
	}
	if status == http.StatusAccepted {
		return nil, fmt.Errorf("%w: profile %q requires approval, which an unattended agent cannot wait for; use a profile without require_approval", ErrHeldForApproval, req.Profile)
	}
	return &out, nil
}

// deployFailed reports a failed reload or check, so the server raises an alert.
func (c *apiClient) deployFailed(ctx context.Context, r apitypes.DeployFailure) error {
	_, _, err := c.call(ctx, http.MethodPost, "/api/v1/alerts/deploy-failed", r, nil)
	return err
}
