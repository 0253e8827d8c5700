package apitypes

import (
	"encoding/json"
	"time"
)

// Scope narrows a role binding (empty lists: no limit).
type Scope struct {
	CAs      []string `json:"cas,omitempty"`
	Profiles []string `json:"profiles,omitempty"`
	Names    []string `json:"names,omitempty"`
}

// Binding is a role granted to a principal within a scope.
type Binding struct {
	ID        string    `json:"id"`
	Principal string    `json:"principal"`
	Role      string    `json:"role"`
	Scope     Scope     `json:"scope"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by"`
	// Source is "oidc:NAME" for a binding that provider's group claims
	// give, replaced at each sign-in; absent for an administrator's.
	Source string `json:"source,omitempty"`
}

// Identity is a client-certificate name (SAN URI, DNS name or e-mail
// address) that authenticates as a principal over mTLS.
type Identity struct {
	Kind      string    `json:"kind"` // uri | dns | email (oidc: the provider's subject)
	Value     string    `json:"value"`
	CreatedAt time.Time `json:"created_at,omitzero"`
	// Source is "oidc:NAME" for an identity that provider's sign-in added
	// (an e-mail address it verified, replaced at the next sign-in); set
	// by the server, ignored in a request.
	Source string `json:"source,omitempty"`
}

// Token describes an API token; the secret is never shown again.
type Token struct {
	ID          string     `json:"id"`
	Principal   string     `json:"principal"`
	Description string     `json:"description,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	ExpiresAt   *time.Time `json:"expires_at,omitempty"`
	RevokedAt   *time.Time `json:"revoked_at,omitempty"`
	LastUsedAt  *time.Time `json:"last_used_at,omitempty"`
	// Via is "oidc:NAME" for a token a sign-in through that identity
	// provider minted.
	Via string `json:"via,omitempty"`
}

// NewToken is a token just created: Token is the only time the secret is shown.
type NewToken struct {
	Token  string `json:"token"`
	Record Token  `json:"record"`
}

// Principal is a person or a system that can call the API.
type Principal struct {
	ID          string     `json:"id"`
	Name        string     `json:"name"`
	Kind        string     `json:"kind"` // human | machine
	Description string     `json:"description,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	CreatedBy   string     `json:"created_by"`
	DisabledAt  *time.Time `json:"disabled_at,omitempty"`
	Bindings    []Binding  `json:"bindings"`
	Identities  []Identity `json:"identities"`
	Tokens      []Token    `json:"tokens"`
}

// CreatePrincipalRequest creates a principal, optionally binding one role
// and minting a first token in the same request.
type CreatePrincipalRequest struct {
	Name        string `json:"name"`
	Kind        string `json:"kind"` // human | machine
	Description string `json:"description,omitempty"`
	Role        string `json:"role,omitempty"`
	Scope       Scope  `json:"scope,omitzero"`
	Token       bool   `json:"token,omitempty"`
	// TokenExpiresIn is a duration such as 90d or 12h; empty: no expiry.
	TokenExpiresIn string `json:"token_expires_in,omitempty"`
}

// CreatePrincipalResult is the principal, and the first token when asked for.
type CreatePrincipalResult struct {
	Principal Principal `json:"principal"`
	Token     *NewToken `json:"token,omitempty"`
}

// CreateTokenRequest mints another token for a principal.
type CreateTokenRequest struct {
	Description string `json:"description,omitempty"`
	ExpiresIn   string `json:"expires_in,omitempty"` // e.g. 90d; empty: no expiry
}

// Role is a built-in or custom role.
type Role struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Permissions []string `json:"permissions"`
	Builtin     bool     `json:"builtin"`
}

// CreateBindingRequest grants a role to a principal.
type CreateBindingRequest struct {
	Principal string `json:"principal"`
	Role      string `json:"role"`
	Scope     Scope  `json:"scope,omitzero"`
}

// ApprovalRequest is an issuance request held for approval.
type ApprovalRequest struct {
	ID        string     `json:"id"`
	Requester string     `json:"requester"`
	CA        string     `json:"ca"`
	Profile   string     `json:"profile"`
	Names     []string   `json:"names"`
	Status    string     `json:"status"` // pending | approved | issued | rejected | expired | failed
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt time.Time  `json:"expires_at"`
	DecidedBy string     `json:"decided_by,omitempty"`
	DecidedAt *time.Time `json:"decided_at,omitempty"`
	Comment   string     `json:"comment,omitempty"`
	Serial    string     `json:"serial,omitempty"`
	Error     string     `json:"error,omitempty"`
	// CertificatePEM is the issued certificate and its chain, once issued.
	CertificatePEM string `json:"certificate_pem,omitempty"`
}

// Decision approves or rejects a request.
type Decision struct {
	Comment string `json:"comment,omitempty"`
}

// AuditEvent is one audit log record as exported (one JSON object per line).
type AuditEvent struct {
	Seq       int64     `json:"seq"`
	Time      time.Time `json:"time"`
	Principal string    `json:"principal"`
	// PrincipalID is the acting principal's ID (absent on old events).
	PrincipalID string          `json:"principal_id,omitempty"`
	Source      string          `json:"source,omitempty"`
	Action      string          `json:"action"`
	Target      string          `json:"target,omitempty"`
	Outcome     string          `json:"outcome"`
	RequestID   string          `json:"request_id,omitempty"`
	Details     json.RawMessage `json:"details,omitempty"`
	PrevHash    string          `json:"prev_hash"`
	Hash        string          `json:"hash"`
}

// AuditProblem is the first break verification found.
type AuditProblem struct {
	Seq     int64  `json:"seq"`
	Kind    string `json:"kind"` // modified | deleted | inserted | reordered | truncated | checkpoint
	Message string `json:"message"`
}

// AuditVerifyResult reports a walk of the chain and its checkpoints.
type AuditVerifyResult struct {
	Intact         bool          `json:"intact"`
	Events         int64         `json:"events"`
	HeadSeq        int64         `json:"head_seq"`
	HeadHash       string        `json:"head_hash"`
	Checkpoints    int           `json:"checkpoints"`
	LastCheckpoint int64         `json:"last_checkpoint_seq"`
	Unanchored     int64         `json:"events_after_last_checkpoint"`
	Anchors        []string      `json:"anchors,omitempty"` // external anchors checked, with the checkpoint each records
	Problem        *AuditProblem `json:"problem,omitempty"`
	DurationMS     int64         `json:"duration_ms"`
}

// ReportCA is one CA's line in a report's summary.
type ReportCA struct {
	CAID  string `json:"ca_id"`
	CA    string `json:"ca"`
	Count int    `json:"count"`
}

// ReportEntry is one certificate in a report. The revocation fields are
// set in the revoked report only.
type ReportEntry struct {
	Serial         string     `json:"serial"`
	CAID           string     `json:"ca_id"`
	CA             string     `json:"ca"`
	Profile        string     `json:"profile,omitempty"`
	Subject        string     `json:"subject,omitempty"`
	SANs           []string   `json:"sans,omitempty"`
	Requester      string     `json:"requester,omitempty"`
	IssuedAt       *time.Time `json:"issued_at,omitempty"`
	NotBefore      *time.Time `json:"not_before,omitempty"`
	NotAfter       *time.Time `json:"not_after,omitempty"`
	RevokedAt      *time.Time `json:"revoked_at,omitempty"`
	Reason         string     `json:"reason,omitempty"`
	RevokedBy      string     `json:"revoked_by,omitempty"`
	InvalidityDate *time.Time `json:"invalidity_date,omitempty"`
}

// Report lists the certificates issued or revoked in [Since, Until).
type Report struct {
	Kind         string        `json:"kind"` // issued | revoked
	Since        time.Time     `json:"since"`
	Until        time.Time     `json:"until"`
	GeneratedAt  time.Time     `json:"generated_at"`
	Total        int           `json:"total"`
	PerCA        []ReportCA    `json:"per_ca"`
	Certificates []ReportEntry `json:"certificates"`
}

// PrincipalList is every principal the caller may see.
type PrincipalList struct {
	Principals []Principal `json:"principals"`
}

// TokenList is a principal's tokens (or every token).
type TokenList struct {
	Tokens []Token `json:"tokens"`
}

// RoleList is every role.
type RoleList struct {
	Roles []Role `json:"roles"`
}

// BindingList is role bindings.
type BindingList struct {
	Bindings []Binding `json:"bindings"`
}

// ApprovalRequestList is requests held for approval.
type ApprovalRequestList struct {
	Requests []ApprovalRequest `json:"requests"`
}
