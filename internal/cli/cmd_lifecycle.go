package cli

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/atomicfile"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// renewCommands are cert renew and cert renewal-info.
func renewCommands() []*command {
	return []*command{
		{
			name: "renew", summary: "renew a certificate the server holds the key of, now",
			args:    "SERIAL [--reuse-key] [--out FILE]",
			example: "certwright cert renew 3f2a9c0d5e6b7a8c9d0e1f2a3b4c5d6e",
			more: "The new certificate has the same names, profile, tags and owner, a new key kept by the server (wrapped), and\n" +
				"is linked to the old one (renewed_by / replaces). Machines fetch the new key with cert key. --reuse-key certifies\n" +
				"the same key again, only where the profile sets allow_key_reuse. A certificate whose key the server does not hold\n" +
				"is renewed from its host: certwright agent, or cert sign --csr FILE --replaces SERIAL.",
			run: runCertRenew,
		},
		{
			name: "renewal-info", summary: "show when a certificate should be renewed (what agents are told)",
			args: "SERIAL", example: "certwright cert renewal-info 3f2a9c0d5e6b7a8c9d0e1f2a3b4c5d6e",
			run: runRenewalInfo,
		},
	}
}

func runCertRenew(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("cert renew")
	reuse := fs.Bool("reuse-key", false, "certify the same key again (the profile must allow key reuse)")
	out := fs.String("out", "", "write the new certificate and its chain (without the root) to `FILE` (mode 0644)")
	c, pos, err := r.open(fs, cf, args, "SERIAL")
	if err != nil {
		return err
	}
	defer c.close()
	serial, err := r.serialArg(pos[0])
	if err != nil {
		return err
	}
	var res apitypes.IssuedCertificate
	if err := c.postJSON(ctx, "/api/v1/certificates/"+seg(serial)+"/renew", apitypes.RenewRequest{ReuseKey: *reuse}, &res); err != nil {
		return err
	}
	if *out != "" {
		if err := atomicfile.WriteFile(*out, leafAndChain(res), 0o644); err != nil {
			return &hintError{err, "the certificate was renewed; fetch it with: certwright cert get " + res.Serial + " --chain --out FILE"}
		}
	}
	if cf.json {
		return printJSON(r.stdout, res)
	}
	fmt.Fprintf(r.stdout, "Renewed %s: new certificate %s, valid until %s.\n", serial, res.Serial, showTime(res.NotAfter))
	return nil
}

func runRenewalInfo(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("cert renewal-info")
	c, pos, err := r.open(fs, cf, args, "SERIAL")
	if err != nil {
		return err
	}
	defer c.close()
	serial, err := r.serialArg(pos[0])
	if err != nil {
		return err
	}
	var info apitypes.RenewalInfo
	if err := c.getJSON(ctx, "/api/v1/certificates/"+seg(serial)+"/renewal-info", nil, &info); err != nil {
		return err
	}
	if cf.json {
		return printJSON(r.stdout, info)
	}
	f := newFields(r.stdout)
	f.add("serial", info.Serial)
	f.add("not after", showTime(info.NotAfter))
	f.add("window", showTime(info.WindowStart)+" to "+showTime(info.WindowEnd))
	switch {
	case info.RenewedBy != "":
		f.add("renew", "done: renewed by "+info.RenewedBy)
	case info.RenewNow:
		f.add("renew", "now ("+info.Reason+")")
	default:
		f.add("renew", "not yet (window opens in "+info.WindowStart.Sub(info.ServerTime).Round(time.Minute).String()+")")
	}
	return f.flush()
}

// alertsCommands are the alerts subcommands.
func alertsCommands() []*command {
	return []*command{
		{
			name: "list", summary: "list recent alerts and where they were delivered",
			args: "[--limit N]", example: "certwright alerts list",
			run: runAlertsList,
		},
		{
			name: "test", summary: "send a test alert to a channel now",
			args: "CHANNEL", example: "certwright alerts test ops-mail",
			more: "Channels are configured under alerts.channels in config.yaml; the command fails, naming the reason, when the\n" +
				"channel does not take the message.",
			run: runAlertsTest,
		},
	}
}

func runAlertsList(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("alerts list")
	limit := fs.Int("limit", 50, "show at most `N` alerts, newest first")
	c, _, err := r.open(fs, cf, args)
	if err != nil {
		return err
	}
	defer c.close()
	if *limit < 1 || *limit > 1000 {
		return r.usagef("--limit %d: want 1 to 1000", *limit)
	}
	var list apitypes.AlertList
	if err := c.getJSON(ctx, "/api/v1/alerts", map[string][]string{"limit": {strconv.Itoa(*limit)}}, &list); err != nil {
		return err
	}
	if cf.json {
		return printJSON(r.stdout, list)
	}
	if len(list.Channels) == 0 {
		fmt.Fprintln(r.stderr, "No alert channels are configured (alerts.channels in config.yaml): alerts are recorded but go nowhere.")
	}
	t := newTable(r.stdout, "CREATED", "KIND", "THRESHOLD", "SUBJECT", "DELIVERIES", "SUMMARY")
	for _, a := range list.Alerts {
		var ds []string
		for _, d := range a.Deliveries {
			ds = append(ds, d.Channel+":"+d.Status)
		}
		if len(ds) == 0 {
			ds = []string{"-"}
		}
		t.row(showTime(a.CreatedAt), a.Kind, firstNonEmpty(a.Threshold, "-"), a.Subject, strings.Join(ds, ","), a.Summary)
	}
	return t.flush()
}

func runAlertsTest(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("alerts test")
	c, pos, err := r.open(fs, cf, args, "CHANNEL")
	if err != nil {
		return err
	}
	defer c.close()
	var res map[string]string
	if err := c.postJSON(ctx, "/api/v1/alerts/test", apitypes.AlertTestRequest{Channel: pos[0]}, &res); err != nil {
		return err
	}
	if cf.json {
		return printJSON(r.stdout, res)
	}
	fmt.Fprintf(r.stdout, "Test alert sent to %s.\n", pos[0])
	return nil
}

// rotateCommand is certwright rotate.
func rotateCommand() *command {
	return &command{
		name: "rotate", summary: "emergency rotation: replace every certificate of a CA, profile or key, then revoke the old ones",
		args:    "--ca CA | --profile P | --key-spki HEX [--to-ca CA] [--grace 24h] [--reason R] [--no-wait] | --status [ID]",
		example: "certwright rotate --ca issuing --grace 2h",
		more: "Certificates the server holds the key of are re-issued at once (with a new key); the others are marked for renewal\n" +
			"now, so agents and ACME clients (ARI) replace them at their next check. After the grace period every old\n" +
			"certificate is revoked (reason superseded; key_compromise for --key-spki). The rotation runs on the server and\n" +
			"resumes after a restart; this command follows its progress until it finishes (Ctrl-C stops following, not the\n" +
			"rotation). --status shows the latest rotations, or one by ID.\n\n" +
			"A rotation takes every unexpired, unrevoked certificate the selector matches, the same set as cert revoke-bulk:\n" +
			"certificates already renewed and the server's own TLS certificate included (the server re-issues that one and\n" +
			"serves the new one at once). Without --to-ca the CA key is NOT changed: the replacements are signed by the same\n" +
			"CA. If a CA key is compromised, create a new CA and rotate with --to-ca NEW (you need cert:issue on NEW for\n" +
			"every certificate's profile and names), then revoke or retire the old CA.\n\n" +
			"--key-spki reports the key compromised: from the start it is never certified again (renewals reusing it,\n" +
			"CSRs and ACME orders for it are refused), a renewal counts as the replacement only with a new key, and when\n" +
			"the rotation ends every certificate of the key is revoked.",
		run: runRotate,
	}
}

func runRotate(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("rotate")
	var req apitypes.RotationRequest
	fs.StringVar(&req.CA, "ca", "", "rotate every certificate issued by `CA` (name or ID)")
	fs.StringVar(&req.Profile, "profile", "", "rotate every certificate issued under `PROFILE`")
	fs.StringVar(&req.SPKISHA256, "key-spki", "", "rotate every certificate for the public key whose SubjectPublicKeyInfo has SHA-256 `HEX`")
	fs.StringVar(&req.ToCA, "to-ca", "", "re-issue from `CA` instead of each certificate's own")
	fs.StringVar(&req.Grace, "grace", "24h", "how long the old certificates stay valid (`DURATION`, e.g. 10s, 2h, 7d); every old certificate is revoked when it ends")
	fs.StringVar(&req.Reason, "reason", "", "revocation `REASON` for the old certificates (default superseded, or key_compromise with --key-spki)")
	status := fs.Bool("status", false, "show rotations instead of starting one")
	noWait := fs.Bool("no-wait", false, "start the rotation and return without following it")
	c, pos, err := r.open(fs, cf, args, "[ID]")
	if err != nil {
		return err
	}
	defer c.close()
	if *status {
		if len(pos) == 1 {
			var rot apitypes.Rotation
			if err := c.getJSON(ctx, "/api/v1/rotations/"+seg(pos[0]), nil, &rot); err != nil {
				return err
			}
			if cf.json {
				return printJSON(r.stdout, rot)
			}
			return r.printRotation(rot, true)
		}
		var list apitypes.RotationList
		if err := c.getJSON(ctx, "/api/v1/rotations", nil, &list); err != nil {
			return err
		}
		if cf.json {
			return printJSON(r.stdout, list)
		}
		t := newTable(r.stdout, "ID", "STARTED", "STATUS", "SELECTOR", "REVOKE AT", "PROGRESS")
		for _, rot := range list.Rotations {
			t.row(rot.ID, showTime(rot.CreatedAt), rot.Status, rotationSelector(rot), showTime(rot.RevokeAt), progress(rot))
		}
		return t.flush()
	}
	if len(pos) > 0 {
		return r.usagef("unexpected argument %q (an ID goes with --status)", pos[0])
	}
	if req.SPKISHA256 != "" {
		h := strings.ToLower(strings.ReplaceAll(req.SPKISHA256, ":", ""))
		if b, err := hex.DecodeString(h); err != nil || len(b) != 32 {
			return r.usagef("--key-spki %q: want the SHA-256 of the SubjectPublicKeyInfo as 64 hex digits", req.SPKISHA256)
		}
		req.SPKISHA256 = h
	}
	if req.CA == "" && req.Profile == "" && req.SPKISHA256 == "" {
		return r.usagef("say what to rotate: --ca, --profile or --key-spki")
	}
	var rot apitypes.Rotation
	if err := c.postJSON(ctx, "/api/v1/rotations", req, &rot); err != nil {
		return err
	}
	if cf.json && *noWait {
		return printJSON(r.stdout, rot)
	}
	reissue, signal := 0, 0
	for _, it := range rot.Items {
		if it.Method == "reissue" || it.Method == "server" {
			reissue++
		} else {
			signal++
		}
	}
	if !cf.json {
		fmt.Fprintf(r.stdout, "Rotation %s started: %d certificates (%d re-issued by the server, %d replaced by their agents or ACME clients); old ones are revoked at %s.\n",
			rot.ID, len(rot.Items), reissue, signal, showTime(rot.RevokeAt))
		if req.ToCA == "" {
			fmt.Fprintln(r.stdout, "The CA key is not changed: replacements are signed by each certificate's own CA. If a CA key is compromised, rotate with --to-ca NEW_CA.")
		}
	}
	if *noWait {
		fmt.Fprintf(r.stdout, "Follow it with: certwright rotate --status %s\n", rot.ID)
		return nil
	}
	return r.followRotation(ctx, c, rot.ID, cf.json)
}

// followRotation polls a rotation until it finishes or the user stops
// following (the rotation goes on on the server).
func (r *runner) followRotation(ctx context.Context, c *client, id string, asJSON bool) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()
	last := ""
	for {
		var rot apitypes.Rotation
		if err := c.getJSON(ctx, "/api/v1/rotations/"+seg(id), nil, &rot); err != nil {
			if errors.Is(ctx.Err(), context.Canceled) {
				fmt.Fprintf(r.stderr, "\nStopped following; rotation %s goes on. Resume with: certwright rotate --status %s\n", id, id)
				return nil
			}
			return err
		}
		if p := progress(rot); p != last && !asJSON {
			fmt.Fprintf(r.stdout, "%s  %s\n", time.Now().UTC().Format("15:04:05"), p)
			last = p
		}
		if rot.Status == "done" {
			if asJSON {
				return printJSON(r.stdout, rot)
			}
			return r.printRotation(rot, false)
		}
		select {
		case <-ctx.Done():
			fmt.Fprintf(r.stderr, "\nStopped following; rotation %s goes on. Resume with: certwright rotate --status %s\n", id, id)
			return nil
		case <-time.After(2 * time.Second):
		}
	}
}

func progress(rot apitypes.Rotation) string {
	total := 0
	for _, n := range rot.Counts {
		total += n
	}
	replaced := rot.Counts["replaced"] + rot.Counts["revoked"]
	s := fmt.Sprintf("%d/%d replaced or revoked", replaced, total)
	if n := rot.Counts["revoked"]; n > 0 {
		s += fmt.Sprintf(", %d revoked", n)
	}
	if n := rot.Counts["failed"]; n > 0 {
		s += fmt.Sprintf(", %d failed", n)
	}
	return s
}

func rotationSelector(rot apitypes.Rotation) string {
	var parts []string
	if rot.CAID != "" {
		parts = append(parts, "ca="+rot.CAID)
	}
	if rot.Profile != "" {
		parts = append(parts, "profile="+rot.Profile)
	}
	if rot.SPKISHA256 != "" {
		parts = append(parts, "spki="+rot.SPKISHA256[:16]+"…")
	}
	return strings.Join(parts, ",")
}

func (r *runner) printRotation(rot apitypes.Rotation, items bool) error {
	f := newFields(r.stdout)
	f.add("rotation", rot.ID)
	f.add("status", rot.Status)
	f.add("selector", rotationSelector(rot))
	f.add("started", showTime(rot.CreatedAt)+" by "+rot.CreatedBy)
	f.add("revoke at", showTime(rot.RevokeAt)+" (reason "+rot.Reason+")")
	f.add("progress", progress(rot))
	if err := f.flush(); err != nil {
		return err
	}
	if !items || len(rot.Items) == 0 {
		return nil
	}
	fmt.Fprintln(r.stdout)
	t := newTable(r.stdout, "SERIAL", "METHOD", "STATUS", "NEW SERIAL", "ERROR")
	for _, it := range rot.Items {
		t.row(it.Serial, it.Method, it.Status, firstNonEmpty(it.NewSerial, "-"), firstNonEmpty(it.Error, "-"))
	}
	return t.flush()
}

// jobsCommands are the scheduled jobs' commands.
func jobsCommands() []*command {
	return []*command{
		{
			name: "list", summary: "show the scheduled jobs and their last run", example: "certwright jobs list",
			run: runJobsList,
		},
		{
			name: "run", summary: "run a scheduled job now and show its outcome",
			args: "NAME", example: "certwright jobs run expiry-check",
			run: runJobsRun,
		},
		{
			name: "runs", summary: "show the recorded runs of one job or every job, newest first, with the replica that ran each",
			args: "[NAME] [--since 1h] [--limit N]", example: "certwright jobs runs alert-delivery --since 30m",
			more: "Every run that did its work is recorded, on whichever replica ran it; a run skipped because another replica\n" +
				"held the job or had run it less than an interval before is not. The server keeps each job's runs of the last\n" +
				"7 days, at most 1,000 of them. --since takes a duration back from now (30m, 1h, 7d) or an RFC 3339 time.",
			run: runJobsRuns,
		},
	}
}

func runJobsList(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("jobs list")
	c, _, err := r.open(fs, cf, args)
	if err != nil {
		return err
	}
	defer c.close()
	var list apitypes.JobList
	if err := c.getJSON(ctx, "/api/v1/jobs", nil, &list); err != nil {
		return err
	}
	if cf.json {
		return printJSON(r.stdout, list)
	}
	t := newTable(r.stdout, "JOB", "EVERY", "LAST RUN", "REPLICA", "OUTCOME", "RUNS/1H", "DETAIL")
	for _, j := range list.Jobs {
		last := "-"
		if j.StartedAt != nil {
			last = showTime(*j.StartedAt)
		}
		runs := "-"
		if j.RunsLastHour != nil {
			runs = strconv.Itoa(*j.RunsLastHour)
		}
		t.row(j.Name, j.Interval, last, firstNonEmpty(j.Replica, "-"), j.Outcome, runs, firstNonEmpty(j.Detail, "-"))
	}
	return t.flush()
}

func runJobsRuns(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("jobs runs")
	since := fs.String("since", "", "show runs started from `T` on: a duration back from now (30m, 1h, 7d) or an RFC 3339 time (default 1h)")
	limit := fs.Int("limit", 0, "show at most `N` runs, 1 to 1000 (default 100)")
	c, pos, err := r.open(fs, cf, args, "[NAME]")
	if err != nil {
		return err
	}
	defer c.close()
	q := url.Values{}
	name := ""
	if len(pos) > 0 {
		name = pos[0]
		q.Set("job", name)
	}
	if *since != "" {
		q.Set("since", *since)
	}
	if *limit != 0 {
		q.Set("limit", strconv.Itoa(*limit))
	}
	var list apitypes.JobRunList
	if err := c.getJSON(ctx, "/api/v1/jobs/runs", q, &list); err != nil {
		return c.explainNotFound(ctx, err, nameRef{"job", name})
	}
	if cf.json {
		return printJSON(r.stdout, list)
	}
	if len(list.Runs) == 0 {
		of := ""
		if name != "" {
			of = " of " + name
		}
		fmt.Fprintf(r.stderr, "No runs%s recorded since %s.\n", of, showTime(list.Since))
		return nil
	}
	t := newTable(r.stdout, "JOB", "STARTED", "DURATION", "REPLICA", "OUTCOME", "DETAIL")
	for _, run := range list.Runs {
		took := "-"
		if run.FinishedAt != nil {
			took = "<1ms"
			if d := run.FinishedAt.Sub(run.StartedAt); d >= time.Millisecond {
				took = d.Round(time.Millisecond).String()
			}
		}
		t.row(run.Job, showTime(run.StartedAt), took, firstNonEmpty(run.Replica, "-"), run.Outcome, firstNonEmpty(run.Detail, "-"))
	}
	if err := t.flush(); err != nil {
		return err
	}
	if len(list.Runs) == list.Limit {
		fmt.Fprintf(r.stderr, "The newest %d runs since %s; older ones may be left out: --limit N shows up to 1000.\n", list.Limit, showTime(list.Since))
	}
	return nil
}

func runJobsRun(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("jobs run")
	c, pos, err := r.open(fs, cf, args, "NAME")
	if err != nil {
		return err
	}
	defer c.close()
	var j apitypes.Job
	if err := c.postJSON(ctx, "/api/v1/jobs/"+seg(pos[0])+"/run", struct{}{}, &j); err != nil {
		return c.explainNotFound(ctx, err, nameRef{"job", pos[0]})
	}
	if cf.json {
		return printJSON(r.stdout, j)
	}
	if j.Replica != "" && j.Outcome != "skipped" {
		fmt.Fprintf(r.stdout, "%s: %s on %s: %s\n", j.Name, j.Outcome, j.Replica, j.Detail)
	} else {
		fmt.Fprintf(r.stdout, "%s: %s: %s\n", j.Name, j.Outcome, j.Detail)
	}
	if j.Outcome == "error" {
		return &codeError{code: 1}
	}
	return nil
}
