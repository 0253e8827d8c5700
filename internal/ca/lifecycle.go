package ca

import (
	"errors"
	"fmt"
	"time"
)

// DefaultRestoreWindow is how long a deleted CA can be restored before it is
// purged, as AWS Private CA's RestorableUntil.
const DefaultRestoreWindow = 30 * 24 * time.Hour

// ErrTransition is returned for a lifecycle change the CA's state forbids.
var ErrTransition = errors.New("ca: state does not allow this change")

// ErrNotIssuing is returned when a CA cannot sign right now.
var ErrNotIssuing = errors.New("ca: CA cannot issue")

// CanIssue reports whether the CA may sign certificates now.
func (c *CA) CanIssue() error {
	if c.Offline() && c.Status == StatusActive {
		return fmt.Errorf("%w: CA %s is an offline root: its key is not on this server; it signs only at its ceremony (certwright ceremony sign-intermediate)", ErrNotIssuing, c.Name)
	}
	switch c.Status {
	case StatusActive:
		return nil
	case StatusPending:
		return fmt.Errorf("%w: CA %s is pending: import its signed certificate first", ErrNotIssuing, c.Name)
	case StatusDisabled:
		return fmt.Errorf("%w: CA %s is disabled", ErrNotIssuing, c.Name)
	default:
		return fmt.Errorf("%w: CA %s is deleted", ErrNotIssuing, c.Name)
	}
}

// Disable stops a CA from issuing. Only an active CA can be disabled.
func (c *CA) Disable(now time.Time) error {
	if c.Status != StatusActive {
		return fmt.Errorf("%w: CA %s is %s, only an active CA can be disabled", ErrTransition, c.Name, c.Status)
	}
	c.Status, c.UpdatedAt = StatusDisabled, now
	return nil
}

// Enable lets a disabled CA issue again.
func (c *CA) Enable(now time.Time) error {
	if c.Status != StatusDisabled {
		return fmt.Errorf("%w: CA %s is %s, only a disabled CA can be enabled", ErrTransition, c.Name, c.Status)
	}
	c.Status, c.UpdatedAt = StatusActive, now
	return nil
}

// Delete soft-deletes a disabled or pending CA; it stays restorable for
// window. An active CA must be disabled first, so deletion is always a
// deliberate two-step act.
func (c *CA) Delete(now time.Time, window time.Duration) error {
	if c.Status != StatusDisabled && c.Status != StatusPending {
		return fmt.Errorf("%w: CA %s is %s: disable it before deleting", ErrTransition, c.Name, c.Status)
	}
	if window <= 0 {
		window = DefaultRestoreWindow
	}
	until := now.Add(window)
	deleted := now
	c.PreviousStatus, c.Status = c.Status, StatusDeleted
	c.DeletedAt, c.RestorableUntil, c.UpdatedAt = &deleted, &until, now
	return nil
}

// Restore undoes Delete within the restore window; the CA returns to the
// state it had (disabled or pending).
func (c *CA) Restore(now time.Time) error {
	if c.Status != StatusDeleted {
		return fmt.Errorf("%w: CA %s is %s, not deleted", ErrTransition, c.Name, c.Status)
	}
	if c.RestorableUntil != nil && !now.Before(*c.RestorableUntil) {
		return fmt.Errorf("%w: CA %s was restorable until %s", ErrTransition, c.Name, c.RestorableUntil.Format(time.RFC3339))
	}
	prev := c.PreviousStatus
	if prev == "" {
		prev = StatusDisabled
	}
	c.Status, c.PreviousStatus = prev, ""
	c.DeletedAt, c.RestorableUntil, c.UpdatedAt = nil, nil, now
	return nil
}
