package cli

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/certwright/certwright/internal/clientctx"
)

func contextCommands() []*command {
	return []*command{
		{name: "list", summary: "list the saved contexts; * marks the current one", args: "[--json]",
			example: "certwright context list", run: runContextList},
		{name: "use", summary: "make a saved context the current one", args: "NAME",
			example: "certwright context use prod", run: runContextUse},
		{name: "remove", summary: "delete a saved context and its token", args: "NAME",
			example: "certwright context remove staging", run: runContextRemove},
	}
}

// contextView is one context in context list --json.
type contextView struct {
	Name            string `json:"name"`
	Current         bool   `json:"current"`
	Server          string `json:"server"`
	RootFingerprint string `json:"root_fingerprint"`
	Principal       string `json:"principal,omitempty"`
	// Auth is "token" or "client_certificate".
	Auth       string `json:"auth"`
	ClientCert string `json:"client_cert,omitempty"`
	CreatedAt  string `json:"created_at"`
}

func newContextFlagSet(name string) (*flag.FlagSet, *bool) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	js := fs.Bool("json", false, "print JSON")
	return fs, js
}

func runContextList(_ context.Context, r *runner, args []string) error {
	fs, js := newContextFlagSet("context list")
	if _, err := r.parse(fs, args); err != nil {
		return err
	}
	st, err := r.contextStore()
	if err != nil {
		return err
	}
	list, err := st.List()
	if err != nil {
		return err
	}
	cur, err := st.Current()
	if err != nil {
		return err
	}
	views := make([]contextView, 0, len(list))
	for _, c := range list {
		v := contextView{Name: c.Name, Current: c.Name == cur, Server: c.Server, RootFingerprint: c.RootFingerprint,
			Principal: c.Principal, Auth: "token", ClientCert: c.ClientCert, CreatedAt: showTime(c.CreatedAt)}
		if c.TokenPath == "" {
			v.Auth = "client_certificate"
		}
		views = append(views, v)
	}
	if *js {
		return printJSON(r.stdout, struct {
			Contexts  []contextView `json:"contexts"`
			Current   string        `json:"current"`
			Directory string        `json:"directory"`
		}{views, cur, st.Path()})
	}
	if len(views) == 0 {
		fmt.Fprintf(r.stderr, "No contexts saved in %s; create one with `certwright login --server URL --fingerprint SHA256`.\n", st.Path())
		return nil
	}
	t := newTable(r.stdout, "CURRENT", "NAME", "SERVER", "PRINCIPAL", "AUTH", "SAVED")
	for _, v := range views {
		mark := ""
		if v.Current {
			mark = "*"
		}
		t.row(mark, v.Name, v.Server, v.Principal, strings.ReplaceAll(v.Auth, "_", " "), v.CreatedAt)
	}
	return t.flush()
}

// contextArg parses the NAME of context use and remove and opens the store.
func (r *runner) contextArg(name string, args []string) (*clientctx.Store, string, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	pos, err := r.parse(fs, args, "NAME")
	if err != nil {
		return nil, "", err
	}
	st, err := r.contextStore()
	return st, pos[0], err
}

func runContextUse(_ context.Context, r *runner, args []string) error {
	st, name, err := r.contextArg("context use", args)
	if err != nil {
		return err
	}
	if err := st.Use(name); err != nil {
		return contextHint(err)
	}
	fmt.Fprintf(r.stdout, "Context %s is now current.\n", name)
	return nil
}

func runContextRemove(_ context.Context, r *runner, args []string) error {
	st, name, err := r.contextArg("context remove", args)
	if err != nil {
		return err
	}
	cur, err := st.Current()
	if err != nil {
		return err
	}
	if err := st.Remove(name); err != nil {
		return contextHint(err)
	}
	fmt.Fprintf(r.stdout, "Context %s removed (its token file deleted; the token itself stays valid until revoked: certwright token revoke ID).\n", name)
	if cur == name {
		fmt.Fprintln(r.stdout, "No context is current now; pick one with `certwright context use NAME`.")
	}
	return nil
}

// contextHint adds the fix to an unknown or malformed context name.
func contextHint(err error) error {
	msg := strings.TrimPrefix(err.Error(), "clientctx: ")
	return &hintError{fmt.Errorf("%s", msg), "`certwright context list` shows the saved contexts"}
}
