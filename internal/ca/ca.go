// Package ca owns the certificate-authority hierarchy: the CA record, its
// lifecycle states (pending, active, disabled, deleted) and the rules for
// moving between them, CA certificate templates, and the checks applied when
// a certificate signed elsewhere is imported.
package ca

import (
	"time"

	"github.com/certwright/certwright/internal/keys"
)

// Status is a CA's lifecycle state.
type Status string

// CA states.
const (
	// StatusPending: key generated here, certificate awaited from an external signer.
	StatusPending  Status = "pending"
	StatusActive   Status = "active"
	StatusDisabled Status = "disabled"
	// StatusDeleted: soft-deleted; restorable until RestorableUntil, then purged.
	StatusDeleted Status = "deleted"
)

// Kind says where a CA sits in the hierarchy.
type Kind string

// CA kinds.
const (
	KindRoot         Kind = "root"
	KindIntermediate Kind = "intermediate"
)

// OfflineKeyProvider is the Key.Provider of a CA whose private key this
// instance does not hold: a root imported with its certificate only, whose
// key stays with the offline ceremony (certwright ceremony). Such a CA
// never signs here; it is in chains, and its CRL is the one uploaded.
const OfflineKeyProvider = "offline"

// Offline reports whether c's key is held outside this instance.
func (c *CA) Offline() bool { return c.Key.Provider == OfflineKeyProvider }

// CA is one certificate authority of this instance.
type CA struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Kind     Kind   `json:"kind"`
	ParentID string `json:"parent_id,omitempty"` // empty for roots and externally signed CAs
	// External is true when the CA's certificate was signed outside this instance.
	External bool     `json:"external"`
	Status   Status   `json:"status"`
	Key      keys.Ref `json:"key"`
	// CertDER is nil while Status is pending.
	CertDER []byte `json:"-"`
	// CSRDER is the request for an externally signed CA.
	CSRDER []byte `json:"-"`
	// ChainDER holds the issuer chain above an externally signed CA (nearest first).
	ChainDER [][]byte `json:"-"`
	// PreviousStatus is what Restore returns a deleted CA to.
	PreviousStatus  Status     `json:"previous_status,omitempty"`
	CreatedAt       time.Time  `json:"created_at"`
	UpdatedAt       time.Time  `json:"updated_at"`
	DeletedAt       *time.Time `json:"deleted_at,omitempty"`
	RestorableUntil *time.Time `json:"restorable_until,omitempty"`
}
