package issue

import "time"

// Approval request statuses. A request starts pending; an approver moves it
// to approved and the issuance that follows to issued (or failed); a
// rejection or the passing of ExpiresAt ends it.
const (
	StatusPending  = "pending"
	StatusApproved = "approved"
	StatusIssued   = "issued"
	StatusRejected = "rejected"
	StatusExpired  = "expired"
	StatusFailed   = "failed"
)

// ApprovalRequest is an issuance request held until a second principal
// approves it.
type ApprovalRequest struct {
	ID          string     `json:"id"`
	RequesterID string     `json:"requester_id"`
	Requester   string     `json:"requester"`
	CA          string     `json:"ca"`
	Profile     string     `json:"profile"`
	Names       []string   `json:"names"`
	Body        []byte     `json:"-"` // the request, to replay on approval
	Status      string     `json:"status"`
	CreatedAt   time.Time  `json:"created_at"`
	ExpiresAt   time.Time  `json:"expires_at"`
	DecidedBy   string     `json:"decided_by,omitempty"`
	DecidedAt   *time.Time `json:"decided_at,omitempty"`
	Comment     string     `json:"comment,omitempty"`
	Serial      string     `json:"serial,omitempty"`
	Error       string     `json:"error,omitempty"`
	// Replaces is the serial of the certificate the request renews, if
	// it is a renewal.
	Replaces string `json:"replaces,omitempty"`
}
