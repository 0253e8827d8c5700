package ca

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/pki"
)

// Store is the persistence the CA manager needs.
type Store interface {
	GetCA(ctx context.Context, idOrName string) (*CA, error)
	ListCAs(ctx context.Context) ([]*CA, error)
	// UpdateCA and PurgeCAs commit their audit events with the change.
	UpdateCA(ctx context.Context, c *CA, ev audit.Event) error
	PurgeCAs(ctx context.Context, now time.Time, ev audit.Event) ([]string, error)
	// LookupSerial reports the revocation of serial listed under caID, if any.
	LookupSerial(ctx context.Context, caID, serial string) (issued bool, rev *inventory.Revocation, err error)
}

// Manager changes the lifecycle state of CAs: disable, enable, delete,
// restore and purge. Creating CAs signs certificates and so lives in issue.
type Manager struct {
	store         Store
	clock         clock.Clock
	log           *slog.Logger
	restoreWindow time.Duration
}

// NewManager returns a Manager. restoreWindow <= 0 means DefaultRestoreWindow.
func NewManager(st Store, clk clock.Clock, log *slog.Logger, restoreWindow time.Duration) *Manager {
	if restoreWindow <= 0 {
		restoreWindow = DefaultRestoreWindow
	}
	return &Manager{store: st, clock: clk, log: log, restoreWindow: restoreWindow}
}

// Get returns a CA by id or name.
func (m *Manager) Get(ctx context.Context, idOrName string) (*CA, error) {
	c, err := m.store.GetCA(ctx, idOrName)
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	return c, nil
}

// List returns every CA, deleted ones included.
func (m *Manager) List(ctx context.Context) ([]*CA, error) { return m.store.ListCAs(ctx) }

// action names the audit action of a lifecycle change ("disabled" -> "ca.disable").
func action(what string) string {
	switch what {
	case "disabled":
		return "ca.disable"
	case "enabled":
		return "ca.enable"
	case "deleted":
		return "ca.delete"
	}
	return "ca.restore"
}

// ErrForbidden is authz.ErrForbidden.
var ErrForbidden = authz.ErrForbidden

func (m *Manager) change(ctx context.Context, p authz.Principal, idOrName, what string, f func(*CA, time.Time) error) (*CA, error) {
	c, err := m.Get(ctx, idOrName)
	if err != nil {
		return nil, err
	}
	if err := p.Allow(authz.PermCAManage, authz.Resource{CAID: c.ID, CAName: c.Name}); err != nil {
		return nil, err
	}
	from := c.Status
	now := m.clock.Now()
	if err := f(c, now); err != nil {
		return nil, err
	}
	ev := audit.New(p, now, action(what), c.ID,
		map[string]any{"name": c.Name, "from": from, "to": c.Status})
	if err := m.store.UpdateCA(ctx, c, ev); err != nil {
		return nil, fmt.Errorf("ca: save %s: %w", c.Name, err)
	}
	m.log.Info("ca "+what, "ca", c.Name, "id", c.ID, "status", c.Status)
	return c, nil
}

// Disable stops a CA issuing.
func (m *Manager) Disable(ctx context.Context, p authz.Principal, idOrName string) (*CA, error) {
	return m.change(ctx, p, idOrName, "disabled", (*CA).Disable)
}

// Enable lets a disabled CA issue again, unless its certificate has been
// revoked: revocation is permanent.
func (m *Manager) Enable(ctx context.Context, p authz.Principal, idOrName string) (*CA, error) {
	c, err := m.Get(ctx, idOrName)
	if err != nil {
		return nil, err
	}
	if err := p.Allow(authz.PermCAManage, authz.Resource{CAID: c.ID, CAName: c.Name}); err != nil {
		return nil, err
	}
	if c.ParentID != "" && len(c.CertDER) > 0 {
		cert, err := x509.ParseCertificate(c.CertDER)
		if err != nil {
			return nil, fmt.Errorf("ca: parse certificate of %s: %w", c.Name, err)
		}
		_, rev, err := m.store.LookupSerial(ctx, c.ParentID, pki.SerialHex(cert.SerialNumber))
		if err != nil {
			return nil, fmt.Errorf("ca: check revocation of %s: %w", c.Name, err)
		}
		if rev != nil {
			return nil, fmt.Errorf("%w: CA %s's certificate was revoked at %s (reason %s); revocation is permanent, so it cannot issue again — create a new CA",
				ErrTransition, c.Name, rev.RevokedAt.Format(time.RFC3339), rev.Reason)
		}
	}
	return m.change(ctx, p, idOrName, "enabled", (*CA).Enable)
}

// Delete soft-deletes a disabled or pending CA.
func (m *Manager) Delete(ctx context.Context, p authz.Principal, idOrName string) (*CA, error) {
	return m.change(ctx, p, idOrName, "deleted", func(c *CA, now time.Time) error { return c.Delete(now, m.restoreWindow) })
}

// Restore brings back a soft-deleted CA within its window.
func (m *Manager) Restore(ctx context.Context, p authz.Principal, idOrName string) (*CA, error) {
	return m.change(ctx, p, idOrName, "restored", (*CA).Restore)
}

// Purge removes CAs whose restore window has passed, keys included.
func (m *Manager) Purge(ctx context.Context) ([]string, error) {
	now := m.clock.Now()
	ids, err := m.store.PurgeCAs(ctx, now, audit.New(authz.System(), now, "ca.purge", "", map[string]any{"key": "destroyed"}))
	if err != nil {
		return nil, fmt.Errorf("ca: purge: %w", err)
	}
	for _, id := range ids {
		m.log.Info("ca purged", "id", id)
	}
	return ids, nil
}

// Run purges expired deletions every interval until ctx ends.
func (m *Manager) Run(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := m.Purge(ctx); err != nil && ctx.Err() == nil {
			m.log.Error("ca purge failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
