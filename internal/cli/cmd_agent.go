package cli

import (
	"context"
	"flag"
	"fmt"
	"log/slog"

	"github.com/certwright/certwright/internal/agent"
)

// agentCommand is certwright agent.
func agentCommand() *command {
	return &command{
		name: "agent", summary: "run the deployment agent: obtain, write, reload and renew certificates on this host",
		args: "--config FILE [--once | --check-config]",
		example: "certwright agent --config /etc/certwright/agent.yaml\n" +
			"certwright agent --config /etc/certwright/agent.yaml --once",
		more: `The configuration names the server, the trust anchor for its TLS certificate,
the machine principal's token file (mode 0600) or an mTLS client certificate,
and the certificates to keep on this host:

  server: https://pki.example.internal:8443
  ca_file: /etc/certwright/root.pem
  token_file: /etc/certwright/agent.token
  certificates:
    - name: web
      dns_names: [app.example.internal]
      profile: internal_service
      cert: /etc/app/tls/cert.pem
      key: /etc/app/tls/key.pem
      reload: systemctl reload app

Keys are generated on this host and never leave it. Files are replaced
atomically; the previous ones stay intact if a write fails. With check:
HOST:PORT the agent confirms that the service serves the new certificate,
then asks the served chain's CRLs and OCSP responders whether it is revoked
(check_revocation: warn, the default, fails only on revoked; require also
when that cannot be determined; off). --once exits non-zero when any
certificate could not be obtained, written, reloaded or checked.`,
		keyMaterial: true, // the managed keys it fetches and writes
		run:         runAgent,
	}
}

func runAgent(ctx context.Context, r *runner, args []string) error {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	path := fs.String("config", "", "agent configuration `FILE` (YAML)")
	once := fs.Bool("once", false, "run one cycle and exit: non-zero if any certificate failed")
	checkOnly := fs.Bool("check-config", false, "validate the configuration and the credentials it names, then exit")
	if _, err := r.parse(fs, args); err != nil {
		return err
	}
	if err := r.required(fs, "config"); err != nil {
		return err
	}
	if *once && *checkOnly {
		return r.usagef("--once and --check-config exclude each other")
	}
	cfg, err := agent.LoadConfig(*path)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(r.stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	a, err := agent.New(cfg, agent.Options{Log: log, Clock: r.now})
	if err != nil {
		return err
	}
	defer a.Close()
	switch {
	case *checkOnly:
		fmt.Fprintf(r.stdout, "%s: configuration OK: server %s, %d certificate(s)\n", *path, cfg.Server, len(cfg.Certificates))
		return nil
	case *once:
		if err := a.RunOnce(ctx); err != nil {
			return err
		}
		return nil
	}
	return a.Run(ctx)
}
