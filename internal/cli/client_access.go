package cli

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/certwright/certwright/internal/web/apitypes"
)

// ListPrincipals lists every principal with its bindings, identities and tokens.
func (c *client) ListPrincipals(ctx context.Context) (apitypes.PrincipalList, error) {
	var out apitypes.PrincipalList
	err := c.getJSON(ctx, "/api/v1/principals", nil, &out)
	return out, err
}

// CreatePrincipal creates a principal, with a first binding and token if asked.
func (c *client) CreatePrincipal(ctx context.Context, req apitypes.CreatePrincipalRequest) (apitypes.CreatePrincipalResult, error) {
	var out apitypes.CreatePrincipalResult
	err := c.postJSON(ctx, "/api/v1/principals", req, &out)
	return out, err
}

// GetPrincipal shows one principal by name.
func (c *client) GetPrincipal(ctx context.Context, name string) (apitypes.Principal, error) {
	var out apitypes.Principal
	err := c.getJSON(ctx, "/api/v1/principals/"+seg(name), nil, &out)
	return out, err
}

// DisablePrincipal disables a principal and revokes its tokens.
func (c *client) DisablePrincipal(ctx context.Context, name string) (apitypes.Principal, error) {
	var out apitypes.Principal
	err := c.postJSON(ctx, "/api/v1/principals/"+seg(name)+"/disable", nil, &out)
	return out, err
}

// AddIdentity registers a client-certificate name for a principal.
func (c *client) AddIdentity(ctx context.Context, principal string, id apitypes.Identity) (apitypes.Identity, error) {
	var out apitypes.Identity
	err := c.postJSON(ctx, "/api/v1/principals/"+seg(principal)+"/identities", id, &out)
	return out, err
}

// RemoveIdentity unregisters a client-certificate name of a principal.
func (c *client) RemoveIdentity(ctx context.Context, principal string, id apitypes.Identity) error {
	return c.postJSON(ctx, "/api/v1/principals/"+seg(principal)+"/identities/remove", id, nil)
}

// ListTokens lists a principal's tokens (never their secrets).
func (c *client) ListTokens(ctx context.Context, principal string) (apitypes.TokenList, error) {
	var out apitypes.TokenList
	err := c.getJSON(ctx, "/api/v1/principals/"+seg(principal)+"/tokens", nil, &out)
	return out, err
}

// CreateToken mints a token for a principal; the answer is the only time
// the secret is shown.
func (c *client) CreateToken(ctx context.Context, principal string, req apitypes.CreateTokenRequest) (apitypes.NewToken, error) {
	var out apitypes.NewToken
	err := c.postJSON(ctx, "/api/v1/principals/"+seg(principal)+"/tokens", req, &out)
	return out, err
}

// RevokeToken revokes one token by ID.
func (c *client) RevokeToken(ctx context.Context, id string) (apitypes.Token, error) {
	var out apitypes.Token
	err := c.postJSON(ctx, "/api/v1/tokens/"+seg(id)+"/revoke", nil, &out)
	return out, err
}

// ListRoles lists the built-in roles, then the custom ones.
func (c *client) ListRoles(ctx context.Context) (apitypes.RoleList, error) {
	var out apitypes.RoleList
	err := c.getJSON(ctx, "/api/v1/roles", nil, &out)
	return out, err
}

// CreateRole defines a custom role.
func (c *client) CreateRole(ctx context.Context, role apitypes.Role) (apitypes.Role, error) {
	var out apitypes.Role
	err := c.postJSON(ctx, "/api/v1/roles", role, &out)
	return out, err
}

// DeleteRole deletes a custom role that nobody is bound to.
func (c *client) DeleteRole(ctx context.Context, name string) error {
	_, err := c.request(ctx, http.MethodDelete, "/api/v1/roles/"+seg(name), nil, nil, "", nil)
	return err
}

// ListBindings lists role bindings, of one principal when principal is not empty.
func (c *client) ListBindings(ctx context.Context, principal string) (apitypes.BindingList, error) {
	var q url.Values
	if principal != "" {
		q = url.Values{"principal": {principal}}
	}
	var out apitypes.BindingList
	err := c.getJSON(ctx, "/api/v1/bindings", q, &out)
	return out, err
}

// CreateBinding grants a role to a principal within a scope.
func (c *client) CreateBinding(ctx context.Context, req apitypes.CreateBindingRequest) (apitypes.Binding, error) {
	var out apitypes.Binding
	err := c.postJSON(ctx, "/api/v1/bindings", req, &out)
	return out, err
}

// DeleteBinding removes one binding by ID.
func (c *client) DeleteBinding(ctx context.Context, id string) error {
	_, err := c.request(ctx, http.MethodDelete, "/api/v1/bindings/"+seg(id), nil, nil, "", nil)
	return err
}

// ListRequests lists approval requests in a status (pending, ..., or all).
func (c *client) ListRequests(ctx context.Context, status string) (apitypes.ApprovalRequestList, error) {
	var q url.Values
	if status != "" {
		q = url.Values{"status": {status}}
	}
	var out apitypes.ApprovalRequestList
	err := c.getJSON(ctx, "/api/v1/requests", q, &out)
	return out, err
}

// GetRequest shows one approval request, with its certificate once issued.
func (c *client) GetRequest(ctx context.Context, id string) (apitypes.ApprovalRequest, error) {
	var out apitypes.ApprovalRequest
	err := c.getJSON(ctx, "/api/v1/requests/"+seg(id), nil, &out)
	return out, err
}

// ApproveRequest approves a request; the server issues at once.
func (c *client) ApproveRequest(ctx context.Context, id string, d apitypes.Decision) (apitypes.ApprovalRequest, error) {
	var out apitypes.ApprovalRequest
	err := c.postJSON(ctx, "/api/v1/requests/"+seg(id)+"/approve", d, &out)
	return out, err
}

// RejectRequest rejects a request.
func (c *client) RejectRequest(ctx context.Context, id string, d apitypes.Decision) (apitypes.ApprovalRequest, error) {
	var out apitypes.ApprovalRequest
	err := c.postJSON(ctx, "/api/v1/requests/"+seg(id)+"/reject", d, &out)
	return out, err
}

// timeRange is the query of the audit export and the reports; a zero time
// is left to the server's default.
func timeRange(since, until time.Time) url.Values {
	q := url.Values{}
	if !since.IsZero() {
		q.Set("since", since.UTC().Format(time.RFC3339))
	}
	if !until.IsZero() {
		q.Set("until", until.UTC().Format(time.RFC3339))
	}
	return q
}

// ExportAudit streams the audit events in [since, until) to w as JSON
// lines, as the server sends them.
func (c *client) ExportAudit(ctx context.Context, since, until time.Time, w io.Writer) error {
	return c.stream(ctx, "/api/v1/audit/events", timeRange(since, until), "application/x-ndjson", w)
}

// VerifyAudit asks the server to walk the audit chain and its checkpoints.
// A tampered log is an answer, not an error: check Intact.
func (c *client) VerifyAudit(ctx context.Context) (apitypes.AuditVerifyResult, error) {
	var out apitypes.AuditVerifyResult
	err := c.getJSON(ctx, "/api/v1/audit/verify", nil, &out)
	return out, err
}

// Report fetches the issued or revoked report in [since, until) as the
// server renders it in format (json or csv).
func (c *client) Report(ctx context.Context, kind string, since, until time.Time, format string) ([]byte, error) {
	q := timeRange(since, until)
	q.Set("format", format)
	return c.request(ctx, http.MethodGet, "/api/v1/reports/"+seg(kind), q, nil, "", nil)
}
