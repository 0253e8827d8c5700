package cli

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/certwright/certwright/internal/atomicfile"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// requestStatuses are the statuses "request list --status" accepts; all
// lists every request.
func requestStatuses() []string {
	return []string{"pending", "approved", "issued", "rejected", "expired", "failed", "all"}
}

func requestCommands() []*command {
	return []*command{
		{
			name: "list", summary: "list requests held for approval (pending ones unless --status says otherwise)",
			args:    "[--status " + strings.Join(requestStatuses(), "|") + "] [--json]",
			example: "certwright request list --status all",
			run:     runRequestList,
		},
		{
			name: "show", summary: "show one request", args: "ID [--json]",
			example: "certwright request show req_7c1e09a4b2d35f6e8a01",
			run:     runRequestShow,
		},
		{
			name: "approve", summary: "approve a request; the certificate is issued at once",
			args:    "ID [--comment C] [--json]",
			example: "certwright request approve req_7c1e09a4b2d35f6e8a01 --comment \"change 4711\"",
			more:    "A request must be approved by a principal other than its requester.",
			run:     runRequestApprove,
		},
		{
			name: "reject", summary: "reject a request", args: "ID --comment C [--json]",
			example: "certwright request reject req_7c1e09a4b2d35f6e8a01 --comment \"wrong profile, use web_server\"",
			run:     runRequestReject,
		},
		{
			name: "fetch", summary: "write the certificate of an approved and issued request",
			args:    "ID --out FILE [--json]",
			example: "certwright request fetch req_7c1e09a4b2d35f6e8a01 --out app.pem",
			more:    "Exits 3 while the request is still pending, 1 when it was rejected, expired or failed.",
			run:     runRequestFetch,
		},
	}
}

// pendingMessage tells the requester what happens next; out is the file
// the certificate should go to, if one was named.
func pendingMessage(req apitypes.ApprovalRequest, out string) string {
	if out == "" || out == "-" {
		out = "FILE"
	}
	return fmt.Sprintf("request %s is pending approval by a second principal (expires %s); once approved: certwright request fetch %s --out %s",
		req.ID, showTime(req.ExpiresAt), req.ID, out)
}

func runRequestList(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("request list")
	status := fs.String("status", "pending", "only requests in `STATUS`: "+strings.Join(requestStatuses(), ", "))
	if _, err := r.parse(fs, args); err != nil {
		return err
	}
	if !slices.Contains(requestStatuses(), *status) {
		return r.usagef("--status %q: want one of %s", *status, strings.Join(requestStatuses(), ", "))
	}
	c, err := r.connect(cf)
	if err != nil {
		return err
	}
	defer c.close()
	res, err := c.ListRequests(ctx, *status)
	if err != nil {
		return err
	}
	list := res.Requests
	if cf.json {
		return printList(r.stdout, "requests", list)
	}
	if len(list) == 0 {
		if *status == "all" {
			fmt.Fprintln(r.stderr, "No requests.")
		} else {
			fmt.Fprintf(r.stderr, "No %s requests.\n", *status)
		}
		return nil
	}
	t := newTable(r.stdout, "ID", "STATUS", "REQUESTER", "CA", "PROFILE", "NAMES", "CREATED", "EXPIRES")
	for _, q := range list {
		t.row(q.ID, q.Status, q.Requester, q.CA, q.Profile, strings.Join(q.Names, ","), tableTime(q.CreatedAt), tableTime(q.ExpiresAt))
	}
	return t.flush()
}

func printRequest(r *runner, q apitypes.ApprovalRequest) error {
	fl := newFields(r.stdout)
	fl.add("ID", q.ID)
	fl.add("Status", q.Status)
	fl.add("Requester", q.Requester)
	fl.add("CA", q.CA)
	fl.add("Profile", q.Profile)
	fl.add("Names", strings.Join(q.Names, ", "))
	fl.add("Created", showTime(q.CreatedAt))
	fl.add("Expires", showTime(q.ExpiresAt))
	fl.add("Decided by", q.DecidedBy)
	fl.add("Decided", showTimePtr(q.DecidedAt))
	fl.add("Comment", q.Comment)
	fl.add("Serial", q.Serial)
	fl.add("Error", q.Error)
	return fl.flush()
}

func runRequestShow(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("request show")
	c, pos, err := r.open(fs, cf, args, "ID")
	if err != nil {
		return err
	}
	defer c.close()
	q, err := c.GetRequest(ctx, pos[0])
	if err != nil {
		return err
	}
	if cf.json {
		return printJSON(r.stdout, q)
	}
	return printRequest(r, q)
}

func runRequestApprove(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("request approve")
	comment := fs.String("comment", "", "why: `COMMENT` recorded in the audit log")
	c, pos, err := r.open(fs, cf, args, "ID")
	if err != nil {
		return err
	}
	defer c.close()
	q, err := c.ApproveRequest(ctx, pos[0], apitypes.Decision{Comment: *comment})
	if err != nil {
		return err
	}
	if cf.json {
		if err := printJSON(r.stdout, q); err != nil {
			return err
		}
	}
	switch q.Status {
	case "issued":
		if !cf.json {
			fmt.Fprintf(r.stdout, "Approved request %s; issued certificate %s. The requester fetches it with: certwright request fetch %s --out FILE\n",
				q.ID, q.Serial, q.ID)
		}
		return nil
	case "failed":
		return fmt.Errorf("request %s was approved, but issuance failed: %s", q.ID, firstNonEmpty(q.Error, "no reason given"))
	}
	if !cf.json {
		fmt.Fprintf(r.stdout, "Approved request %s; status %s.\n", q.ID, q.Status)
	}
	return nil
}

func runRequestReject(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("request reject")
	comment := fs.String("comment", "", "why: `COMMENT` the requester sees (required)")
	pos, err := r.parse(fs, args, "ID")
	if err != nil {
		return err
	}
	if strings.TrimSpace(*comment) == "" {
		return r.usagef("--comment is required: tell the requester why")
	}
	c, err := r.connect(cf)
	if err != nil {
		return err
	}
	defer c.close()
	q, err := c.RejectRequest(ctx, pos[0], apitypes.Decision{Comment: *comment})
	if err != nil {
		return err
	}
	if cf.json {
		return printJSON(r.stdout, q)
	}
	fmt.Fprintf(r.stdout, "Rejected request %s.\n", q.ID)
	return nil
}

func runRequestFetch(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("request fetch")
	out := fs.String("out", "", "write the certificate and its chain (PEM) to `FILE` (mode 0644; - for standard output)")
	pos, err := r.parse(fs, args, "ID")
	if err != nil {
		return err
	}
	if err := r.required(fs, "out"); err != nil {
		return err
	}
	c, err := r.connect(cf)
	if err != nil {
		return err
	}
	defer c.close()
	q, err := c.GetRequest(ctx, pos[0])
	if err != nil {
		return err
	}
	switch q.Status {
	case "issued":
	case "pending", "approved":
		return &codeError{exitPending, &hintError{
			fmt.Errorf("request %s is %s: no certificate yet (expires %s)", q.ID, q.Status, showTime(q.ExpiresAt)),
			"a second principal approves it with `certwright request approve " + q.ID + "`; then run this again"}}
	default:
		why := firstNonEmpty(q.Error, q.Comment)
		if why != "" {
			why = ": " + why
		}
		return fmt.Errorf("request %s is %s, no certificate will be issued%s", q.ID, q.Status, why)
	}
	if q.CertificatePEM == "" {
		return &hintError{fmt.Errorf("request %s is issued, but the server's answer holds no certificate", q.ID),
			"fetch it by serial: certwright cert get " + q.Serial + " --chain --out FILE"}
	}
	data := []byte(ensureNewline(q.CertificatePEM))
	toFile := *out != "-"
	if toFile {
		if err := atomicfile.WriteFile(*out, data, 0o644); err != nil {
			return err
		}
	}
	if cf.json {
		return printJSON(r.stdout, q)
	}
	if !toFile {
		_, err := r.stdout.Write(data)
		return err
	}
	fmt.Fprintf(r.stderr, "Wrote certificate %s of request %s to %s.\n", q.Serial, q.ID, *out)
	return nil
}
