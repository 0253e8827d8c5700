package cli

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/certwright/certwright/internal/inventory"
)

func auditCommands() []*command {
	return []*command{
		{
			name: "verify", summary: "check the audit log's hash chain and checkpoints on the server",
			args:    "[--json]",
			example: "certwright audit verify",
			more: "Exits 0 and prints a summary when the log is intact; exits 1 with \"audit log TAMPERED: KIND at event N: ...\" on standard error when an event was modified, deleted, inserted or reordered,\n" +
				"or when checkpoints were deleted or replaced (KIND anchor: the latest checkpoint, kept outside the database in DATA/audit-anchor.json, is no longer in it).",
			run: runAuditVerify,
		},
		{
			name: "export", summary: "export audit events as JSON lines (one event per line)",
			args:    "[--since T] [--until T] [--format jsonl] [--out FILE]",
			example: "certwright audit export --since 30d --out audit.jsonl",
			more:    timeArgHelp,
			run:     runAuditExport,
		},
	}
}

// timeArgHelp explains the T of --since and --until.
const timeArgHelp = "T is an RFC 3339 time (2026-01-02T15:04:05Z), a date (2026-01-02, UTC midnight)\n" +
	"or a duration back from now (30d, 2w, 12h)."

// parseTimeRef reads a --since/--until value: RFC 3339, a date (UTC
// midnight), or a duration counted back from now.
func parseTimeRef(s string, now time.Time) (time.Time, error) {
	if t, err := parseTimeArg(s); err == nil {
		return t, nil
	}
	if d, err := inventory.ParseWindow(s); err == nil {
		return now.Add(-d).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time (2026-01-02T15:04:05Z), a date (2026-01-02) or a duration back from now (30d, 12h)", s)
}

// rangeFlags are the --since and --until of the audit export and reports.
type rangeFlags struct {
	since, until string
}

func (f *rangeFlags) register(fs *flag.FlagSet, sinceDefault string) {
	fs.StringVar(&f.since, "since", "", "from `T` on (default: "+sinceDefault+")")
	fs.StringVar(&f.until, "until", "", "up to `T`, exclusive (default: now)")
}

// resolveRange parses the range; a zero time leaves the bound to the server.
func (r *runner) resolveRange(f *rangeFlags) (since, until time.Time, err error) {
	now := r.now()
	if f.since != "" {
		if since, err = parseTimeRef(f.since, now); err != nil {
			return since, until, r.usagef("--since: %v", err)
		}
	}
	if f.until != "" {
		if until, err = parseTimeRef(f.until, now); err != nil {
			return since, until, r.usagef("--until: %v", err)
		}
	}
	end := until
	if end.IsZero() {
		end = now
	}
	if !since.IsZero() && !since.Before(end) {
		return since, until, r.usagef("--since %s is not before --until %s", showTime(since), showTime(end))
	}
	return since, until, nil
}

func runAuditVerify(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("audit verify")
	c, _, err := r.open(fs, cf, args)
	if err != nil {
		return err
	}
	defer c.close()
	res, err := c.VerifyAudit(ctx)
	if err != nil {
		return err
	}
	if cf.json {
		if err := printJSON(r.stdout, res); err != nil {
			return err
		}
	}
	if !res.Intact {
		// A broken chain is a failure: the one error path, exit 1.
		kind, seq, msg := "unknown", int64(0), "the server reported a broken chain without details"
		if p := res.Problem; p != nil {
			kind, seq, msg = p.Kind, p.Seq, p.Message
		}
		return &hintError{fmt.Errorf("audit log TAMPERED: %s at event %d: %s", kind, seq, msg),
			"the log was changed outside certwright: keep the database as it is for investigation, and compare with an earlier export (certwright audit export)"}
	}
	if !cf.json {
		fmt.Fprintf(r.stdout, "audit log intact: %d events, %d %s, last checkpoint at seq %d (%d events since)\n",
			res.Events, res.Checkpoints, plural(res.Checkpoints, "checkpoint"), res.LastCheckpoint, res.Unanchored)
		for _, a := range res.Anchors {
			fmt.Fprintf(r.stdout, "checked against the external anchor: %s\n", a)
		}
	}
	return nil
}

func runAuditExport(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("audit export")
	var rf rangeFlags
	rf.register(fs, "the server's default")
	format := fs.String("format", "jsonl", "output `FORMAT`: jsonl, one JSON event per line (the only format)")
	out := fs.String("out", "", "write to `FILE` (mode 0600) instead of standard output")
	if _, err := r.parse(fs, args); err != nil {
		return err
	}
	if *format != "jsonl" {
		return r.usagef("--format %q: jsonl is the only format", *format)
	}
	since, until, err := r.resolveRange(&rf)
	if err != nil {
		return err
	}
	c, err := r.connect(cf)
	if err != nil {
		return err
	}
	defer c.close()
	if *out == "" || *out == "-" {
		return c.ExportAudit(ctx, since, until, r.stdout)
	}
	var lines lineCounter
	err = streamToFile(*out, 0o600, func(w io.Writer) error {
		return c.ExportAudit(ctx, since, until, io.MultiWriter(w, &lines))
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(r.stderr, "Wrote %d audit events to %s.\n", lines, *out)
	return nil
}

// lineCounter counts the lines written through it.
type lineCounter int64

func (l *lineCounter) Write(p []byte) (int, error) {
	*l += lineCounter(bytes.Count(p, []byte{'\n'}))
	return len(p), nil
}

// streamToFile writes what fill produces to path, through a temporary file
// renamed into place only when fill succeeds: an interrupted export never
// leaves a truncated file that looks complete.
func streamToFile(path string, perm os.FileMode, fill func(io.Writer) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = tmp.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	bw := bufio.NewWriter(tmp)
	if err = fill(bw); err != nil {
		return err
	}
	if err = bw.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
