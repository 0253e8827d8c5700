package lifecycle

import (
	"context"
	"fmt"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
)

// AuditAppender appends audit events that record no other change.
type AuditAppender interface {
	AppendAudit(ctx context.Context, evs ...audit.Event) error
}

// Actions recorded for what a principal asks of the lifecycle by hand
// (the API's route actions for the same requests).
const (
	ActionJobRun    = "job.run"
	ActionAlertTest = "alert.test"
)

// maxAuditDetail bounds an error's text in an audit event.
const maxAuditDetail = 500

// recordAction appends the audit event of an action p asked for: success
// when failure is nil, failed with its text otherwise. The record is kept
// even when the caller has gone away.
func recordAction(ctx context.Context, st AuditAppender, p authz.Principal, at time.Time, action, target string, failure error, details map[string]any) error {
	if details == nil {
		details = map[string]any{}
	}
	if failure != nil {
		details["error"] = cleanText(failure.Error(), maxAuditDetail)
	}
	ev := audit.New(p, at, action, target, details)
	if failure != nil {
		ev.Outcome = audit.Failed
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := st.AppendAudit(ctx, ev); err != nil {
		return fmt.Errorf("lifecycle: audit %s %s: %w", action, target, err)
	}
	return nil
}
