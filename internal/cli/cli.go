// Package cli owns the certwright command line: Main parses the arguments, dispatches to a subcommand from one table, and talks to the server through a typed API client.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/certwright/certwright/internal/errtext"
	"github.com/certwright/certwright/internal/nodump"
	"github.com/certwright/certwright/internal/suggest"
)

// version is what "certwright version" prints when the build carries no
// module version (go build in a checkout, go run, tests).
const version = "0.1.0-dev"

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
	// exitPending: the request is held for approval; nothing was issued yet.
	exitPending = 3
)

// command is one entry of the command table: a group (sub set) or a leaf
// (run or passthrough set).
type command struct {
	name    string
	summary string
	// args follows the command path in the usage line, e.g. "NAME [--pem]".
	args    string
	example string
	// more is extra help text printed after the flags.
	more string
	// keyMaterial: the command holds private keys or the KEK in memory,
	// so its process is kept out of core dumps (nodump) before it runs.
	keyMaterial bool
	sub         []*command
	// fallback, in a group, runs when the first argument names none of
	// its commands ("certwright scan HOST:PORT" beside "scan endpoints"):
	// it gets every argument.
	fallback *command
	// run parses its own flags through runner.parse, which handles --help.
	run func(ctx context.Context, r *runner, args []string) error
	// passthrough hands the arguments unparsed to the server side (init, serve).
	passthrough func(ctx context.Context, stdin io.Reader, args []string, stdout, stderr io.Writer, env func(string) string) error
}

// runner carries the I/O of one invocation and the command being run.
type runner struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
	path   []string
	cmd    *command
	// now is the clock that relative times (--since 30d) count back from.
	now func() time.Time
	// flagSink, when set, receives a leaf's flag set instead of parsing
	// it (completion reads the flags this way).
	flagSink func(*flag.FlagSet)
}

// hintError is an error with a suggestion for the user, printed on its own
// "hint:" line.
type hintError struct {
	err  error
	hint string
}

func (e *hintError) Error() string { return e.err.Error() }
func (e *hintError) Unwrap() error { return e.err }

// usageError marks a command line the user must correct; it exits 2.
type usageError struct{ hintError }

func (e *usageError) Unwrap() error { return &e.hintError }

// codeError ends a command with a particular exit code. With err nil the
// command has already said why, and nothing more is printed.
type codeError struct {
	code int
	err  error
}

func (e *codeError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *codeError) Unwrap() error { return e.err }

// constError is an error that can be a constant, so sentinels are not
// package-level variables.
type constError string

func (e constError) Error() string { return string(e) }

// errHelpShown reports that help was printed as asked; it exits 0.
const errHelpShown = constError("help shown")

// Main runs the certwright command line with args (without the program
// name) and returns the process exit code. It reads the environment only
// through env and writes only to stdout and stderr, so it can run in-process.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, env func(string) string) int {
	if env == nil {
		env = func(string) string { return "" }
	}
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	r := &runner{stdin: stdin, stdout: stdout, stderr: stderr, getenv: env, now: time.Now}
	return report(stderr, dispatch(ctx, r, commandTree(), args), wantsJSON(args))
}

// report prints err on the one error path and picks the exit code. With
// asJSON the error is one JSON object on stderr (errorJSON), so that a
// script reading --json output can read the failure too.
func report(stderr io.Writer, err error, asJSON bool) int {
	if err == nil || errors.Is(err, errHelpShown) || errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	var ce *codeError
	if errors.As(err, &ce) && ce.err == nil {
		return ce.code
	}
	code := exitError
	var u *usageError
	switch {
	case errors.As(err, &u):
		code = exitUsage
	case ce != nil:
		code = ce.code
	}
	var h *hintError
	hint := ""
	if errors.As(err, &h) {
		hint = h.hint
	}
	msg := errtext.User(err)
	if asJSON {
		e := errorJSON{Message: msg, Hint: hint, Exit: code}
		var ae *apiError
		if errors.As(err, &ae) {
			e.Status, e.Rule = ae.status, ae.body.Rule
		}
		if printJSON(stderr, map[string]errorJSON{"error": e}) == nil {
			return code
		}
	}
	fmt.Fprintf(stderr, "certwright: %s\n", msg)
	if hint != "" {
		fmt.Fprintf(stderr, "hint: %s\n", hint)
	}
	return code
}

// errorJSON is a failure under --json: {"error": {...}} on stderr.
type errorJSON struct {
	Message string `json:"message"`
	Hint    string `json:"hint,omitempty"`
	// Status is the HTTP status of the API's refusal, when there was one.
	Status int `json:"status,omitempty"`
	// Rule names the rule that refused (see the API's error body).
	Rule string `json:"rule,omitempty"`
	Exit int    `json:"exit_code"`
}

// wantsJSON reports whether --json is on the command line (before "--"),
// wherever it stands: errors in parsing the rest are JSON too.
func wantsJSON(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "--json", "-json", "--json=true", "-json=true":
			return true
		}
	}
	return false
}

func isHelpArg(a string) bool { return a == "-h" || a == "-help" || a == "--help" }

// dispatch walks the command table along args and runs the leaf it reaches.
func dispatch(ctx context.Context, r *runner, root *command, args []string) error {
	cur := root
	var path, global []string
	for cur.sub != nil {
		if len(args) == 0 || isHelpArg(args[0]) {
			printGroupHelp(r.stdout, cur, path)
			return errHelpShown
		}
		name := args[0]
		if len(path) == 0 && isVersionArg(name) {
			name = "version"
		}
		if strings.HasPrefix(name, "-") {
			// Client flags before the command go to the leaf (globalflags.go).
			lifted, rest, err := liftClientFlags(args)
			if err != nil {
				if cur.fallback != nil {
					cur = cur.fallback
					break
				}
				return err
			}
			global, args = append(global, lifted...), rest
			continue
		}
		next := findCommand(cur, name)
		if next == nil {
			if cur.fallback != nil {
				cur = cur.fallback
				break
			}
			return unknownCommand(cur, path, name)
		}
		path = append(path, name)
		cur, args = next, args[1:]
	}
	r.path, r.cmd = path, cur
	if cur.keyMaterial {
		if _, err := nodump.Protect(r.getenv); err != nil {
			return err
		}
	}
	args = append(global, args...)
	if cur.passthrough != nil {
		for _, a := range args {
			if a == "--" {
				break
			}
			if isHelpArg(a) {
				return passthroughHelp(ctx, r, cur, path)
			}
		}
		return cur.passthrough(ctx, r.stdin, args, r.stdout, r.stderr, r.getenv)
	}
	return cur.run(ctx, r, args)
}

// passthroughHelp prints the usage and example of init or serve, with the
// flags their own flag set lists when asked for help.
func passthroughHelp(ctx context.Context, r *runner, c *command, path []string) error {
	fmt.Fprintf(r.stdout, "Usage: %s\n\n%s.\n\n", commandLine(c, path), upperFirst(c.summary))
	err := c.passthrough(ctx, nil, []string{"--help"}, r.stdout, r.stdout, r.getenv)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		return err
	}
	if c.more != "" {
		fmt.Fprintf(r.stdout, "\n%s\n", c.more)
	}
	fmt.Fprintf(r.stdout, "\nExample:\n%s\n", indent(c.example, "  "))
	return errHelpShown
}

func findCommand(group *command, name string) *command {
	for _, c := range group.sub {
		if c.name == name {
			return c
		}
	}
	return nil
}

// unknownCommand is the usage error for a name that is not a command of
// group: it suggests the closest one and lists them all.
func unknownCommand(group *command, path []string, name string) error {
	names := make([]string, len(group.sub))
	for i, c := range group.sub {
		names[i] = c.name
	}
	where := strings.Join(append(append([]string{"certwright"}, path...), "--help"), " ")
	return newUsageError(fmt.Sprintf("unknown command %q", strings.Join(append(slices.Clone(path), name), " ")),
		fmt.Sprintf("%s; run %q for what each does", suggest.Hint(name, names), where))
}

func newUsageError(msg, hint string) error {
	return &usageError{hintError{err: errors.New(msg), hint: hint}}
}

// usagef reports a command-line mistake in the running command.
func (r *runner) usagef(format string, a ...any) error {
	return newUsageError(fmt.Sprintf(format, a...),
		fmt.Sprintf("run %q for usage", "certwright "+strings.Join(r.path, " ")+" --help"))
}

// commandLine is the usage line of a command.
func commandLine(c *command, path []string) string {
	s := "certwright " + strings.Join(path, " ")
	if c.sub != nil {
		s += " <command>"
	}
	if c.args != "" {
		s += " " + c.args
	}
	return strings.TrimSpace(s)
}

func printLeafHelp(w io.Writer, c *command, path []string, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: %s\n\n%s.\n", commandLine(c, path), upperFirst(c.summary))
	if fs != nil {
		printFlags(w, fs)
	}
	if c.more != "" {
		fmt.Fprintf(w, "\n%s\n", c.more)
	}
	fmt.Fprintf(w, "\nExample:\n%s\n", indent(c.example, "  "))
}

func printGroupHelp(w io.Writer, g *command, path []string) {
	if len(path) == 0 {
		fmt.Fprintf(w, "certwright runs and manages a private PKI: certificate authorities,\ncertificates and the profiles they are issued under.\n\n")
		fmt.Fprintf(w, "Usage: certwright <command> [arguments] [flags]\n")
	} else {
		fmt.Fprintf(w, "Usage: %s [arguments] [flags]\n\n%s.\n", commandLine(g, path), upperFirst(g.summary))
	}
	fmt.Fprintf(w, "\nCommands (with an example each):\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	var walk func(c *command, p []string)
	walk = func(c *command, p []string) {
		if c.sub != nil {
			if f := c.fallback; f != nil {
				fmt.Fprintf(tw, "  %s\t%s\n", strings.TrimSpace(strings.Join(p[len(path):], " ")+" "+strings.Fields(f.args + " ")[0]), f.summary)
				for _, line := range strings.Split(f.example, "\n") {
					fmt.Fprintf(tw, "  \t  $ %s\n", line)
				}
			}
			for _, s := range c.sub {
				walk(s, append(append([]string{}, p...), s.name))
			}
			return
		}
		fmt.Fprintf(tw, "  %s\t%s\n", strings.Join(p[len(path):], " "), c.summary)
		for _, line := range strings.Split(c.example, "\n") {
			fmt.Fprintf(tw, "  \t  $ %s\n", line)
		}
	}
	walk(g, path)
	tw.Flush()
	fmt.Fprintf(w, "\n%s", clientFlagsHelp)
	if len(path) == 0 {
		fmt.Fprintf(w, "\n%s", exitCodesHelp)
	}
	fmt.Fprintf(w, "\nRun \"certwright help <command>\" or \"certwright <command> --help\" for a command's flags.\n")
}

// clientFlagsHelp documents where client commands find the server.
const clientFlagsHelp = `Client flags, accepted by every command that talks to the server, before or after it:
  --context NAME     use the context saved by "certwright login --context NAME"
                     ($CERTWRIGHT_CONTEXT; default: ./certwright-data when it exists,
                     else the current context)
  --data-dir DIR     data directory ($CERTWRIGHT_DATA_DIR, default ./certwright-data)
  --server URL       server URL ($CERTWRIGHT_SERVER, default from DIR/server.json)
  --token-file FILE  file holding the API token ($CERTWRIGHT_TOKEN_FILE; $CERTWRIGHT_TOKEN
                     holds the token itself; default DIR/admin.token)
  --ca-file FILE     root certificate(s) to trust for the server ($CERTWRIGHT_CA_FILE,
                     default DIR/root.pem)
  --client-cert FILE authenticate with this TLS client certificate (PEM) instead of a
                     token ($CERTWRIGHT_CLIENT_CERT); without an explicit token no
                     Authorization header is sent and DIR/admin.token is not read
  --client-key FILE  the client certificate's private key (PEM, $CERTWRIGHT_CLIENT_KEY)
  --json             print the API's JSON answer
`

// exitCodesHelp documents the exit codes.
const exitCodesHelp = `Exit codes:
  0  success
  1  failure (the server refused, the audit log is tampered, a request was not issued, ...)
  2  usage error: correct the command line
  3  pending: the request is held until a second principal approves it
     (certwright request approve ID), then fetch it with certwright request fetch ID
`

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func indent(s, prefix string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n")
}

// commandTree is the one table of commands.
func commandTree() *command {
	return &command{name: "certwright", sub: []*command{
		{
			name: "init", summary: "set up a data directory: root CA, key-encryption key, admin token",
			args: "[flags]", example: "certwright init --data-dir ./certwright-data --org Example --public-http-url http://pki.example.internal:8080 --tls-names pki.example.internal,localhost",
			more:        "On a terminal, init asks for the organisation and the public URL when no flag or\nconfiguration file gives them; it never asks when its input is not a terminal.",
			passthrough: runInit, keyMaterial: true,
		},
		{
			name: "serve", summary: "run the server (API, ACME, CRL/OCSP, dashboard, background jobs)",
			args: "[flags]", example: "certwright serve --data-dir ./certwright-data",
			passthrough: runServe, keyMaterial: true,
		},
		{name: "ca", summary: "manage certificate authorities", sub: caCommands()},
		{name: "cert", summary: "issue, list, fetch, import, renew and revoke certificates", sub: slices.Concat(certCommands(), certRequestCommands(), importCommands(), renewCommands(), revokeCommands())},
		{name: "profile", summary: "manage certificate profiles", sub: profileCommands()},
		{name: "acme", summary: "manage ACME provisioners, external account binding keys and renewal requests", sub: acmeCommands()},
		{name: "est", summary: "manage EST (RFC 7030) device enrolment provisioners and one-time enrolment secrets", sub: estCommands()},
		{name: "scep", summary: "manage SCEP provisioners and one-time challenges (device enrolment, RFC 8894)", sub: scepCommands()},
		{name: "request", summary: "list, approve, reject and fetch requests held for approval", sub: requestCommands()},
		{name: "principal", summary: "manage principals (people and machines) and their mTLS identities", sub: principalCommands()},
		{name: "token", summary: "create, list and revoke API tokens", sub: tokenCommands()},
		{name: "role", summary: "manage roles and bind them to principals", sub: roleCommands()},
		{name: "audit", summary: "verify and export the tamper-evident audit log", sub: auditCommands()},
		{name: "report", summary: "report certificates issued or revoked in a period, and compliance with policy", sub: reportCommands()},
		{name: "alerts", summary: "list alerts and send a test alert to a channel", sub: alertsCommands()},
		{name: "scan", summary: "scan endpoints from here (TLS grade, plaintext services), or the endpoints the server's scans found", sub: scanCommands(), fallback: scanLocalCommand()},
		{name: "jobs", summary: "show and run the scheduled jobs (expiry check, alert delivery, renewal, rotation)", sub: jobsCommands()},
		{name: "config", summary: "validate a server configuration file offline", sub: configCommands()},
		{name: "ceremony", summary: "run an offline root ceremony on an air-gapped machine (no server, no database)", sub: ceremonyCommands()},
		rotateCommand(),
		agentCommand(),
		inspectCommand(),
		backupCommand(), restoreCommand(),
		{name: "keys", summary: "escrow the key-encryption key and keys in Shamir shares, run recovery drills, recover; rotate the KEK", sub: keysCommands()},
		loginCommand(),
		whoamiCommand(),
		logoutCommand(),
		{name: "context", summary: "list, switch and remove the contexts saved by certwright login", sub: contextCommands()},
		{name: "bench", summary: "measure the server under load", sub: benchCommands()},
		completionCommand(),
		{
			name: "verify", summary: "check a certificate chain offline (no server needed)",
			args:    "CERT [--chain FILE] [--roots FILE] [--purpose server|client|code] [--host NAME] [--check-revocation] [--json]",
			example: "certwright verify app.pem --purpose server --host app.example.internal",
			run:     runVerify,
		},
		{
			name: "version", summary: "print the version, commit and Go version (also: certwright --version)", example: "certwright version",
			run: runVersion,
		},
		{
			name: "help", summary: "show help for a command", args: "[COMMAND...]",
			example: "certwright help cert issue",
			run:     runHelp,
		},
	}}
}

func runHelp(ctx context.Context, r *runner, args []string) error {
	for _, a := range args {
		if isHelpArg(a) {
			printLeafHelp(r.stdout, r.cmd, r.path, nil)
			return errHelpShown
		}
	}
	root := commandTree()
	cur := root
	var path []string
	for _, a := range args {
		if cur.sub == nil {
			break
		}
		next := findCommand(cur, a)
		if next == nil {
			return unknownCommand(cur, path, a)
		}
		path = append(path, a)
		cur = next
	}
	if cur.sub != nil {
		printGroupHelp(r.stdout, cur, path)
		return errHelpShown
	}
	// A leaf prints its full help, flags included, when asked for --help.
	return dispatch(ctx, r, root, append(path, "--help"))
}
