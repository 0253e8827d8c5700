package cli

import (
	"flag"
	"fmt"
	"github.com/certwright/certwright/internal/inventory"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/certwright/certwright/internal/pki"
)

// reorderArgs moves every flag (and the value of a flag that takes one)
// ahead of the positional arguments, so that "cert show SERIAL --json"
// parses like "cert show --json SERIAL". Everything after "--" stays
// positional. Unknown flags are kept as flags so that Parse reports them.
func reorderArgs(fs *flag.FlagSet, args []string) []string {
	var flags, positional []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			positional = append(positional, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			positional = append(positional, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		if strings.Contains(name, "=") {
			continue
		}
		f := fs.Lookup(name)
		if f == nil || isBoolFlag(f) {
			continue
		}
		if i+1 < len(args) {
			i++
			flags = append(flags, args[i])
		}
	}
	return append(append(flags, "--"), positional...)
}

func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// parse parses args into fs wherever the flags are, prints the command's
// help for -h/--help, and checks that exactly the named positional
// arguments are present (those named in brackets may be left out).
func (r *runner) parse(fs *flag.FlagSet, args []string, positional ...string) ([]string, error) {
	if r.flagSink != nil {
		r.flagSink(fs)
		return nil, errHelpShown
	}
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	if err := fs.Parse(reorderArgs(fs, args)); err != nil {
		if err == flag.ErrHelp {
			printLeafHelp(r.stdout, r.cmd, r.path, fs)
			return nil, errHelpShown
		}
		msg := err.Error()
		if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
			msg = "unknown flag --" + name
		}
		return nil, r.usagef("%s", msg)
	}
	rest := fs.Args()
	// A name in brackets, "[PRINCIPAL]", is optional; optional names come last.
	required := 0
	for _, p := range positional {
		if !strings.HasPrefix(p, "[") {
			required++
		}
	}
	if len(rest) < required {
		return nil, r.usagef("missing %s", positional[len(rest)])
	}
	if len(rest) > len(positional) {
		return nil, r.usagef("unexpected argument %q", rest[len(positional)])
	}
	return rest, nil
}

// required reports the first of the named string flags left empty.
func (r *runner) required(fs *flag.FlagSet, names ...string) error {
	for _, n := range names {
		if f := fs.Lookup(n); f != nil && f.Value.String() == "" {
			return r.usagef("--%s is required", n)
		}
	}
	return nil
}

// isSet reports whether the flag was given on the command line.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}

// printFlags lists a command's own flags, then the client flags.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	var own, client []*flag.Flag
	fs.VisitAll(func(f *flag.Flag) {
		if isClientFlag(f.Name) {
			client = append(client, f)
		} else {
			own = append(own, f)
		}
	})
	section := func(title string, list []*flag.Flag) {
		if len(list) == 0 {
			return
		}
		fmt.Fprintf(w, "\n%s:\n", title)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, f := range list {
			arg, usage := flag.UnquoteUsage(f)
			if isBoolFlag(f) {
				arg = ""
			}
			name := "--" + f.Name
			if arg != "" {
				name += " " + arg
			}
			if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
				usage += fmt.Sprintf(" (default %s)", f.DefValue)
			}
			fmt.Fprintf(tw, "  %s\t%s\n", name, usage)
		}
		tw.Flush()
	}
	section("Flags", own)
	section("Client flags", client)
}

// listFlag collects comma-separated values; the flag may also be repeated.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}

// keyAlgFlag accepts a key algorithm name and stores its canonical form.
type keyAlgFlag string

func (k *keyAlgFlag) String() string { return string(*k) }

func (k *keyAlgFlag) Set(s string) error {
	a, err := pki.ParseKeyAlgorithm(s)
	if err != nil {
		return fmt.Errorf("%s", strings.TrimPrefix(err.Error(), "pki: "))
	}
	*k = keyAlgFlag(a)
	return nil
}

// durationFlag holds a duration given as 30d, 2w, 12h or a Go duration.
type durationFlag time.Duration

func (d *durationFlag) String() string {
	if *d == 0 {
		return ""
	}
	return inventory.FormatWindow(time.Duration(*d))
}

func (d *durationFlag) Set(s string) error {
	v, err := inventory.ParseWindow(s)
	if err != nil {
		return err
	}
	*d = durationFlag(v)
	return nil
}

// clientFlags are the flags of every command that talks to the server.
type clientFlags struct {
	context    string
	dataDir    string
	server     string
	tokenFile  string
	caFile     string
	clientCert string
	clientKey  string
	json       bool
}

func isClientFlag(name string) bool {
	switch name {
	case "context", "data-dir", "server", "token-file", "ca-file", "client-cert", "client-key", "json":
		return true
	}
	return false
}

func (c *clientFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.context, "context", "", "use the saved login `NAME` (certwright login; $CERTWRIGHT_CONTEXT)")
	fs.StringVar(&c.dataDir, "data-dir", "", "data `DIR` ($CERTWRIGHT_DATA_DIR, default ./certwright-data)")
	fs.StringVar(&c.server, "server", "", "server `URL` ($CERTWRIGHT_SERVER, default from DIR/server.json)")
	fs.StringVar(&c.tokenFile, "token-file", "", "`FILE` holding the API token ($CERTWRIGHT_TOKEN_FILE or $CERTWRIGHT_TOKEN, default DIR/admin.token)")
	fs.StringVar(&c.caFile, "ca-file", "", "root certificate `FILE` to trust for the server ($CERTWRIGHT_CA_FILE, default DIR/root.pem)")
	fs.StringVar(&c.clientCert, "client-cert", "", "authenticate with the TLS client certificate in `FILE` (PEM, $CERTWRIGHT_CLIENT_CERT); without --token-file or $CERTWRIGHT_TOKEN(_FILE) no token is sent")
	fs.StringVar(&c.clientKey, "client-key", "", "private key `FILE` of --client-cert (PEM, $CERTWRIGHT_CLIENT_KEY)")
	fs.BoolVar(&c.json, "json", false, "print the API's JSON answer")
}

// newClientFlagSet is the flag set of a client command, carrying the
// client flags (--context, --data-dir, --server, --token-file, --ca-file,
// --client-cert, --client-key, --json).
func newClientFlagSet(name string) (*flag.FlagSet, *clientFlags) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	cf := &clientFlags{}
	cf.register(fs)
	return fs, cf
}

// open parses a client command's arguments and connects to the server.
func (r *runner) open(fs *flag.FlagSet, cf *clientFlags, args []string, positional ...string) (*client, []string, error) {
	pos, err := r.parse(fs, args, positional...)
	if err != nil {
		return nil, nil, err
	}
	c, err := r.connect(cf)
	if err != nil {
		return nil, nil, err
	}
	return c, pos, nil
}
