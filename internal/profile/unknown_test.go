package profile

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
)

// missingDocs holds no custom profile, as the store answers then.
type missingDocs struct{ err error }

func (missingDocs) CreateProfile(context.Context, string, []byte, audit.Event) error { return nil }
func (missingDocs) UpdateProfile(context.Context, string, []byte, audit.Event) error { return nil }
func (d missingDocs) GetProfile(_ context.Context, name string) ([]byte, error) {
	if d.err != nil {
		return nil, d.err
	}
	return nil, fmt.Errorf("store: %w: profile %q", authz.ErrNotFound, name)
}
func (missingDocs) ListProfiles(context.Context) (map[string][]byte, error)  { return nil, nil }
func (missingDocs) DeleteProfile(context.Context, string, audit.Event) error { return nil }

// TestUnknownProfileSaysItOnce: an unknown profile's error names it once,
// with the built-in names, and still is both ErrUnknown and not-found; a
// store failure is not reported as an unknown profile.
func TestUnknownProfileSaysItOnce(t *testing.T) {
	t.Parallel()
	_, err := NewCatalog(missingDocs{}, nil).Get(context.Background(), "web_sever")
	if !errors.Is(err, ErrUnknown) || !errors.Is(err, authz.ErrNotFound) {
		t.Fatalf("error %v is not ErrUnknown and not-found", err)
	}
	if msg := err.Error(); strings.Count(msg, "web_sever") != 1 || !strings.Contains(msg, "web_server") {
		t.Errorf("message %q: want the name once and the built-in names", msg)
	}
	down := errors.New("store: database unavailable")
	_, err = NewCatalog(missingDocs{err: down}, nil).Get(context.Background(), "custom")
	if !errors.Is(err, down) || errors.Is(err, ErrUnknown) {
		t.Errorf("store failure reported as %v", err)
	}
}
