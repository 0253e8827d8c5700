package issue

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/ca"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/profile"
)

// heldRequest is what an approval request stores to replay on approval.
type heldRequest struct {
	CSR          []byte   `json:"csr"`
	CA           string   `json:"ca"`
	Profile      string   `json:"profile"`
	ValidityDays int      `json:"validity_days,omitempty"`
	Tags         []string `json:"tags,omitempty"`
	// Validity is Request.Validity, in nanoseconds.
	Validity time.Duration `json:"validity,omitempty"`
	// Auth is how the requester authenticated (authz.Principal.Auth):
	// the replay acts with the same kind of authentication, so a held
	// request becomes an mTLS credential only where the original request
	// could have (never for ACME).
	Auth string `json:"auth,omitempty"`
	// Replaces and RenewalKind are Request's: an approved renewal is
	// linked to the certificate it replaces, as one not held is.
	Replaces    string                `json:"replaces,omitempty"`
	RenewalKind inventory.RenewalKind `json:"renewal_kind,omitempty"`
}

// ErrNotPending marks a decision on a request that is no longer pending
// (decided, or expired). ApprovalStore.UpdateApprovalRequest wraps it when
// its status guard fails.
var ErrNotPending = errors.New("issue: request is not pending")

func newRequestID() (string, error) {
	b := make([]byte, 10)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("issue: request id: %w", err)
	}
	return "req_" + hex.EncodeToString(b), nil
}

// hold stores req as a pending approval request.
func (s *Service) hold(ctx context.Context, req Request, authority *ca.CA, prof *profile.Profile, names []string) (*Result, error) {
	if req.CSR == nil {
		return nil, fmt.Errorf("%w: profile %s requires approval, and a request without a CSR cannot be held for approval", ErrInvalid, prof.Name)
	}
	id, err := newRequestID()
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(heldRequest{CSR: req.CSR.Raw, CA: authority.Name, Profile: prof.Name, ValidityDays: req.ValidityDays, Validity: req.Validity, Tags: req.Tags,
		Auth: req.Principal.Auth, Replaces: req.Replaces, RenewalKind: req.RenewalKind})
	if err != nil {
		return nil, fmt.Errorf("issue: encode request: %w", err)
	}
	now := s.cfg.Clock.Now()
	r := &ApprovalRequest{
		ID: id, RequesterID: req.Principal.ID, Requester: req.Principal.Name,
		CA: authority.Name, Profile: prof.Name, Names: names, Body: body, Replaces: req.Replaces,
		Status: StatusPending, CreatedAt: now, ExpiresAt: now.Add(s.cfg.ApprovalLifetime),
	}
	ev := audit.New(req.Principal, now, "request.create", id, map[string]any{
		"ca": authority.Name, "profile": prof.Name, "names": names, "expires_at": r.ExpiresAt,
	})
	if err := s.store.CreateApprovalRequest(ctx, r, ev); err != nil {
		return nil, fmt.Errorf("issue: store approval request: %w", err)
	}
	s.cfg.Log.Info("issuance held for approval", "request", id, "requester", r.Requester, "profile", prof.Name)
	return &Result{Pending: r}, nil
}

// resource is what request r touches, for scope checks. The request
// records its CA by name; the CA's ID is looked up (through cache, when
// given) so that a binding scoped by CA ID covers it too.
func (s *Service) resource(ctx context.Context, r *ApprovalRequest, cache map[string]string) authz.Resource {
	res := authz.Resource{CAName: r.CA, Profile: r.Profile, Names: r.Names}
	if id, ok := cache[r.CA]; ok {
		res.CAID = id
		return res
	}
	if c, err := s.store.GetCA(ctx, r.CA); err == nil {
		res.CAID = c.ID
	}
	if cache != nil {
		cache[r.CA] = res.CAID
	}
	return res
}

// decidable loads request id for a decision by approver: pending, not
// expired, within the approver's scope, and not the approver's own.
func (s *Service) decidable(ctx context.Context, approver authz.Principal, id string) (*ApprovalRequest, error) {
	r, err := s.store.GetApprovalRequest(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := approver.Allow(authz.PermRequestApprove, s.resource(ctx, r, nil)); err != nil {
		return nil, err
	}
	if approver.ID == r.RequesterID {
		return nil, authz.Refuse(authz.RuleTwoPerson, "two-person rule: %s requested %s and cannot decide on it; another approver must", approver.Name, id)
	}
	if r.Status != StatusPending {
		return nil, fmt.Errorf("%w: request %s is %s", ErrNotPending, id, r.Status)
	}
	if !s.cfg.Clock.Now().Before(r.ExpiresAt) {
		return nil, fmt.Errorf("%w: request %s expired at %s", ErrNotPending, id, r.ExpiresAt.Format("2006-01-02T15:04:05Z07:00"))
	}
	return r, nil
}

// Approve approves a pending request and issues its certificate, with the
// requester's authority re-checked at this moment. The request ends issued,
// or failed with the reason.
func (s *Service) Approve(ctx context.Context, approver authz.Principal, id, comment string) (*ApprovalRequest, *Result, error) {
	if err := checkComment(comment); err != nil {
		return nil, nil, err
	}
	r, err := s.decidable(ctx, approver, id)
	if err != nil {
		return nil, nil, err
	}
	now := s.cfg.Clock.Now()
	r.Status, r.DecidedBy, r.DecidedAt, r.Comment = StatusApproved, approver.Name, &now, comment
	ev := audit.New(approver, now, "request.approve", id, map[string]any{"requester": r.Requester, "comment": comment})
	if err := s.store.UpdateApprovalRequest(ctx, r, StatusPending, now, ev); err != nil {
		return nil, nil, err
	}

	res, ierr := s.replay(ctx, approver, r)
	final := *r
	outcome := map[string]any{"requester": r.Requester}
	if ierr != nil {
		final.Status, final.Error = StatusFailed, ierr.Error()
		outcome["error"] = ierr.Error()
	} else {
		final.Status, final.Serial = StatusIssued, res.Cert.Serial
		outcome["serial"] = res.Cert.Serial
	}
	fev := audit.New(approver, s.cfg.Clock.Now(), "request."+final.Status, id, outcome)
	if ierr != nil {
		fev.Outcome = audit.Failed
	}
	if err := s.store.UpdateApprovalRequest(ctx, &final, StatusApproved, now, fev); err != nil {
		return nil, nil, fmt.Errorf("issue: record outcome of request %s: %w", id, err)
	}
	if ierr != nil {
		return &final, nil, ierr
	}
	return &final, res, nil
}

// replay issues an approved request as its requester.
func (s *Service) replay(ctx context.Context, approver authz.Principal, r *ApprovalRequest) (*Result, error) {
	var h heldRequest
	if err := json.Unmarshal(r.Body, &h); err != nil {
		return nil, fmt.Errorf("issue: request %s is unreadable: %w", r.ID, err)
	}
	csr, err := x509.ParseCertificateRequest(h.CSR)
	if err != nil {
		return nil, fmt.Errorf("issue: request %s: CSR: %w", r.ID, err)
	}
	requester, rec, err := s.store.LoadPrincipal(ctx, r.RequesterID)
	if err != nil {
		return nil, fmt.Errorf("%w: requester %s: %w", ErrForbidden, r.Requester, err)
	}
	if rec.DisabledAt != nil {
		return nil, fmt.Errorf("%w: requester %s has been disabled", ErrForbidden, r.Requester)
	}
	p := *requester
	p.Source, p.RequestID = approver.Source, approver.RequestID
	p.Auth = h.Auth
	if h.Auth == "" && slices.Contains(h.Tags, "acme") {
		// Held before the request recorded its authentication: ACME
		// finalize tagged its requests "acme". Treat it as ACME (no
		// credential); at worst a user-tagged request loses one.
		p.Auth = authACME
	}
	start := time.Now()
	res, err := s.issue(ctx, Request{
		Principal: p, CA: h.CA, Profile: h.Profile, CSR: csr,
		ValidityDays: h.ValidityDays, Validity: h.Validity, Tags: h.Tags, Replaces: h.Replaces, RenewalKind: h.RenewalKind,
	}, r)
	s.observe(res, start, err)
	return res, err
}

// Reject ends a pending request without a certificate.
func (s *Service) Reject(ctx context.Context, approver authz.Principal, id, comment string) (*ApprovalRequest, error) {
	if strings.TrimSpace(comment) == "" {
		return nil, fmt.Errorf("%w: a rejection needs a comment saying why", ErrInvalid)
	}
	if err := checkComment(comment); err != nil {
		return nil, err
	}
	r, err := s.decidable(ctx, approver, id)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Clock.Now()
	r.Status, r.DecidedBy, r.DecidedAt, r.Comment = StatusRejected, approver.Name, &now, comment
	ev := audit.New(approver, now, "request.reject", id, map[string]any{"requester": r.Requester, "comment": comment})
	if err := s.store.UpdateApprovalRequest(ctx, r, StatusPending, now, ev); err != nil {
		return nil, err
	}
	return r, nil
}

// GetRequest returns a request to its requester or to an approver whose
// scope covers it.
func (s *Service) GetRequest(ctx context.Context, p authz.Principal, id string) (*ApprovalRequest, error) {
	r, err := s.store.GetApprovalRequest(ctx, id)
	if err != nil {
		return nil, err
	}
	if r.RequesterID == p.ID {
		return r, nil
	}
	if err := p.Allow(authz.PermRequestApprove, s.resource(ctx, r, nil)); err != nil {
		return nil, err
	}
	return r, nil
}

// ListRequests returns the requests p may see with the given status ("" for
// all): an approver's within its scope, everyone else's own.
func (s *Service) ListRequests(ctx context.Context, p authz.Principal, status string, limit int) ([]*ApprovalRequest, error) {
	switch status {
	case "", StatusPending, StatusApproved, StatusIssued, StatusRejected, StatusExpired, StatusFailed:
	default:
		return nil, fmt.Errorf("%w: unknown request status %q", ErrInvalid, status)
	}
	all, err := s.store.ListApprovalRequests(ctx, status, limit)
	if err != nil {
		return nil, err
	}
	out := make([]*ApprovalRequest, 0, len(all))
	caIDs := map[string]string{}
	for _, r := range all {
		if r.RequesterID == p.ID || p.Can(authz.PermRequestApprove) && p.Allow(authz.PermRequestApprove, s.resource(ctx, r, caIDs)) == nil {
			out = append(out, r)
		}
	}
	return out, nil
}

// RequestGroup is how many requests share a CA, profile and names, and
// whether the counting principal made them: what ListRequests judges
// each request on.
type RequestGroup struct {
	CA, Profile string
	Names       []string
	Own         bool
	N           int
}

// maxRequestGroups bounds the groups CountRequests reads for a scoped
// approver; past it the count says "at least".
const maxRequestGroups = 10000

// CountRequests counts the requests in status that ListRequests would
// show p (its own, and those its request:approve covers) with store
// counts instead of rows; partial: a scoped approver's count stopped at
// maxRequestGroups groups of requests alike.
func (s *Service) CountRequests(ctx context.Context, p authz.Principal, status string) (n int, partial bool, err error) {
	switch status {
	case StatusPending, StatusApproved, StatusIssued, StatusRejected, StatusExpired, StatusFailed:
	default:
		return 0, false, fmt.Errorf("%w: unknown request status %q", ErrInvalid, status)
	}
	switch {
	case p.Everywhere(authz.PermRequestApprove):
		n, err = s.store.CountApprovalRequests(ctx, status, "")
		return n, false, err
	case !p.Can(authz.PermRequestApprove):
		n, err = s.store.CountApprovalRequests(ctx, status, p.ID)
		return n, false, err
	}
	groups, err := s.store.ApprovalRequestGroups(ctx, status, p.ID, maxRequestGroups)
	if err != nil {
		return 0, false, err
	}
	caIDs := map[string]string{}
	for _, g := range groups {
		r := &ApprovalRequest{CA: g.CA, Profile: g.Profile, Names: g.Names}
		if g.Own || p.Allow(authz.PermRequestApprove, s.resource(ctx, r, caIDs)) == nil {
			n += g.N
		}
	}
	return n, len(groups) >= maxRequestGroups, nil
}

// ExpireRequests marks pending requests past their lifetime expired.
func (s *Service) ExpireRequests(ctx context.Context) ([]string, error) {
	now := s.cfg.Clock.Now()
	ids, err := s.store.ExpireApprovalRequests(ctx, now, audit.New(authz.System(), now, "request.expire", "", nil))
	if err != nil {
		return nil, fmt.Errorf("issue: expire approval requests: %w", err)
	}
	if len(ids) > 0 {
		s.cfg.Log.Info("approval requests expired", "count", len(ids))
	}
	return ids, nil
}

const maxComment = 2000

func checkComment(c string) error {
	if len(c) > maxComment {
		return fmt.Errorf("%w: comment is %d bytes, at most %d", ErrInvalid, len(c), maxComment)
	}
	return nil
}
