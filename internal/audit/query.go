package audit

import "time"

// Query selects audit events for reading, newest first: every condition
// that is set holds.
type Query struct {
	// Principal, Target and Action match exactly.
	Principal, Target, Action string
	// ActionPrefix matches actions that start with it ("certificate.").
	ActionPrefix string
	// Since and Until bound the event's time: Since <= time < Until.
	Since, Until time.Time
	// Before, when positive, selects events with seq < Before: the next
	// page after one whose oldest event was Before.
	Before int64
	// Floor, when positive, selects events with seq >= Floor: it bounds
	// how far back a query with no indexed condition reads.
	Floor int64
	// Limit is the most events returned.
	Limit int
}
