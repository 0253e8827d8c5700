package app

import (
	"context"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/ca"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/store"
)

// caWrites is the store as every writer of CA records in this process sees
// it (the issuance service, the lifecycle Manager, the revocation
// service): each write that changes a CA row invalidates the issuance
// path's CA cache once it has returned, so the change applies to the very
// next request. Changes from other processes reach the cache within
// ca.CacheMaxAge.
type caWrites struct {
	*store.DB
	cas *ca.Cache
}

func (s caWrites) CreateCA(ctx context.Context, c *ca.CA, ev audit.Event) error {
	defer s.cas.Invalidate()
	return s.DB.CreateCA(ctx, c, ev)
}

func (s caWrites) UpdateCA(ctx context.Context, c *ca.CA, ev audit.Event) error {
	defer s.cas.Invalidate()
	return s.DB.UpdateCA(ctx, c, ev)
}

func (s caWrites) PurgeCAs(ctx context.Context, now time.Time, ev audit.Event) ([]string, error) {
	defer s.cas.Invalidate()
	return s.DB.PurgeCAs(ctx, now, ev)
}

func (s caWrites) RevokeCA(ctx context.Context, r *inventory.Revocation, c *ca.CA, ev audit.Event) (*inventory.Revocation, bool, error) {
	defer s.cas.Invalidate()
	return s.DB.RevokeCA(ctx, r, c, ev)
}
