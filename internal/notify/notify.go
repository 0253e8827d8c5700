// Package notify owns delivering alerts to people and systems: webhook and
// email channels that each make one delivery attempt per Send.
//
// A dispatcher stores each lifecycle.Alert, picks channels with a
// lifecycle.Router and calls Channel.Send, retrying with backoff until
// IsPermanent says a failure is not worth retrying. Channels never log and
// never put secrets (header values, HMAC keys, passwords, URL paths) in
// their errors.
package notify

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/certwright/certwright/internal/lifecycle"
)

// Channel delivers one alert; implementations are safe for concurrent use.
type Channel interface {
	Name() string
	Send(ctx context.Context, a lifecycle.Alert) error
}

// ErrInvalidConfig is wrapped by every configuration error from NewWebhook
// and NewEmail. Such errors are permanent.
var ErrInvalidConfig = errors.New("invalid config")

// Error is a failed delivery attempt.
type Error struct {
	Channel string // channel name
	Type    string // "webhook" or "email"
	// Permanent failures are not worth retrying (see IsPermanent).
	Permanent bool
	// Code is the HTTP status or SMTP reply code that failed the delivery,
	// 0 when the attempt failed before an answer (network, TLS, timeout).
	Code int
	// Msg says what failed; it never contains a secret.
	Msg string
	// Err is the underlying cause, if any.
	Err error
}

func (e *Error) Error() string {
	s := fmt.Sprintf("notify: %s %q: %s", e.Type, e.Channel, e.Msg)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// IsPermanent reports whether err is not worth retrying: a webhook answer
// 4xx other than 408 and 429, a webhook redirect (the configured URL is
// wrong), an SMTP 5xx reply, or bad configuration. Network failures,
// timeouts, TLS failures, webhook 5xx and SMTP 4xx are worth retrying.
func IsPermanent(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrInvalidConfig) {
		return true
	}
	var e *Error
	return errors.As(err, &e) && e.Permanent
}

// namePattern is what a channel name may look like: routes and the
// `alerts test` command refer to channels by it.
var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func configErr(typ, name, format string, args ...any) error {
	return fmt.Errorf("notify: %s %q: %w: %s", typ, name, ErrInvalidConfig, fmt.Sprintf(format, args...))
}

func validateName(typ, name string) error {
	if !namePattern.MatchString(name) {
		return configErr(typ, name, "name must be 1-64 characters of letters, digits, '.', '_' or '-', starting with a letter or digit")
	}
	return nil
}

// hasCRLF reports whether s contains a line break or NUL, the characters
// that split a header or an SMTP command.
func hasCRLF(s string) bool {
	return strings.ContainsAny(s, "\r\n\x00")
}

// minRedacted is the shortest secret excerpt redacts.
const minRedacted = 4

// excerpt returns at most n bytes of b as valid UTF-8, with every secret
// replaced, quoted for an error message.
func excerpt(b []byte, n int, secrets []string) string {
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	for _, sec := range secrets {
		// Shorter values would mangle ordinary words and reveal little.
		if len(sec) >= minRedacted {
			s = strings.ReplaceAll(s, sec, "[redacted]")
		}
	}
	if len(s) > n {
		cut := n
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return fmt.Sprintf("%q", s)
}
