package cli

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/atomicfile"
	"github.com/certwright/certwright/internal/loadgen"
	"github.com/certwright/certwright/internal/pki"
)

func benchCommands() []*command {
	return []*command{{
		name: "issue", summary: "measure issuance against a live server: certificates/s, latency and server CPU per certificate",
		args:    "[--clients N] [--count N] [--warmup N] [--profile P] [--ca CA] [--domain DOMAIN] [--key ecdsa-p256|rsa-2048] [--server-pid PID[,PID...]] [--max-duration D] [--timeout D] [--save-certs FILE] [--serials FILE] [--json]",
		example: "certwright bench issue --clients 32 --count 10000 --server-pid \"$(pgrep -n -x certwright)\"",
		more: "Every request signs a CSR for a fresh key and a new name (<run>-<i>.DOMAIN) with\n" +
			"POST /api/v1/certificates/sign; all keys and CSRs are made before the clock starts. The\n" +
			"clients share at most --clients HTTP/1.1 keep-alive connections. The certificates issued are\n" +
			"real: they are stored, audited and listed like any other (the warm-up's too).\n\n" +
			"--server-pid (Linux) reads the server's CPU time from /proc/PID/stat before and after the\n" +
			"measured phase, and the machine's from /proc/stat, so that the CPU other processes used\n" +
			"shows next to it, and the server threads' context switches. It must be the server process\n" +
			"itself: with \"go run\" that is the built binary (named certwright), not the go command.\n" +
			"Several replicas behind a load balancer: give every replica's PID, comma-separated; the\n" +
			"figures are their sums.\n\n" +
			"The command exits 1 when any request failed; the report says how many, by HTTP status and\n" +
			"error, and when the first failure came (from the start of the measured phase): revoking the\n" +
			"token or disabling the CA during a run shows when it took effect.",
		run: runBenchIssue,
	}}
}

func runBenchIssue(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("bench issue")
	clients := fs.Int("clients", 32, "`N` concurrent clients, each on its own connection")
	count := fs.Int("count", 10000, fmt.Sprintf("send `N` measured requests (1 to %d)", loadgen.MaxCount))
	warmup := fs.Int("warmup", 200, "first send `N` requests that are not measured")
	profile := fs.String("profile", defaultRequestProfile, "profile `NAME` to issue under")
	caName := fs.String("ca", "", "issuing CA `NAME` (default: the server's default)")
	domain := fs.String("domain", "bench.example.internal", "the names asked for are under `DOMAIN`")
	key := keyAlgFlag(pki.ECDSAP256)
	fs.Var(&key, "key", "key `ALG` of each CSR: ecdsa-p256 or rsa-2048 (RSA keys take ~0.1 s each to make)")
	serverPIDs := fs.String("server-pid", "", "read the server's CPU time from /proc/`PID`/stat (Linux); several replicas: PID,PID,...")
	maxDuration := fs.Duration("max-duration", 5*time.Minute, "stop the run after `D` (warm-up included)")
	timeout := fs.Duration("timeout", 30*time.Second, "give up on one request after `D`")
	saveCerts := fs.String("save-certs", "", "write the PEM of every certificate received to `FILE` (mode 0644)")
	serials := fs.String("serials", "", "write the serial of every certificate received to `FILE`, one a line")
	if _, err := r.parse(fs, args); err != nil {
		return err
	}
	plan := loadgen.Plan{Count: *count, Warmup: *warmup, Profile: *profile, CA: *caName, Key: pki.KeyAlgorithm(key), Domain: *domain}
	switch {
	case *clients < 1 || *clients > loadgen.MaxClients:
		return r.usagef("--clients %d: want 1 to %d", *clients, loadgen.MaxClients)
	case *count < 1 || *count > loadgen.MaxCount:
		return r.usagef("--count %d: want 1 to %d", *count, loadgen.MaxCount)
	case *warmup < 0 || *warmup > loadgen.MaxCount:
		return r.usagef("--warmup %d: want 0 to %d", *warmup, loadgen.MaxCount)
	case plan.Key != pki.ECDSAP256 && plan.Key != pki.RSA2048:
		return r.usagef("--key %s: want ecdsa-p256 or rsa-2048", plan.Key)
	case *maxDuration <= 0 || *timeout <= 0:
		return r.usagef("--max-duration and --timeout must be positive")
	}
	pids, err := parsePIDs(*serverPIDs)
	if err != nil {
		return r.usagef("--server-pid %q: %v", *serverPIDs, err)
	}
	if err := plan.Validate(); err != nil {
		return r.usagef("%s", strings.TrimPrefix(err.Error(), "loadgen: "))
	}
	for _, p := range []string{*saveCerts, *serials} {
		if p == "" {
			continue
		}
		if err := checkOutputFile(p, true); err != nil {
			return err
		}
	}
	if len(pids) > 0 {
		if err := loadgen.CheckPIDs(pids); err != nil {
			return &hintError{err, "--server-pid must be the running server's process ID, e.g. $(pgrep -n -x certwright), or the replicas' IDs separated by commas"}
		}
	}
	ep, err := r.discover(cf)
	if err != nil {
		return err
	}
	target := loadgen.Target{URL: strings.TrimRight(ep.server.String(), "/"), Token: ep.token, Roots: ep.roots, ClientCert: ep.clientCert}

	fmt.Fprintf(r.stderr, "Preparing %d %s CSRs...\n", plan.Warmup+plan.Count, plan.Key)
	batch, err := loadgen.Prepare(ctx, plan)
	if err != nil {
		return err
	}
	fmt.Fprintf(r.stderr, "Sending %d + %d warm-up requests to %s with %d clients...\n", plan.Count, plan.Warmup, target.URL, *clients)
	hc := loadgen.NewHTTPClient(target, *clients)
	defer hc.CloseIdleConnections()
	res, err := loadgen.Run(ctx, hc, target, batch, loadgen.Options{
		Clients: *clients, Timeout: *timeout, MaxDuration: *maxDuration, ServerPIDs: pids,
		KeepCertificates: *saveCerts != "",
	})
	if err != nil {
		return err
	}
	if err := writeBenchFiles(res, *saveCerts, *serials); err != nil {
		return err
	}
	if cf.json {
		if err := printJSON(r.stdout, res); err != nil {
			return err
		}
	} else if err := printBenchResult(r, res); err != nil {
		return err
	}
	switch {
	case res.Failed > 0:
		return &hintError{fmt.Errorf("bench issue: %d of %d requests failed", res.Failed, res.Requests),
			fmt.Sprintf("the first failure came %.3f s into the run: %s", res.FirstFailure.AfterSeconds, res.FirstFailure.Error)}
	case res.NotSent > 0:
		return &hintError{fmt.Errorf("bench issue: %d of %d requests not sent: %s", res.NotSent, plan.Count, res.Stopped),
			"raise --max-duration or lower --count"}
	}
	return nil
}

func writeBenchFiles(res *loadgen.Result, certsPath, serialsPath string) error {
	if certsPath != "" {
		var b strings.Builder
		for _, is := range res.Issued {
			b.WriteString(is.PEM)
		}
		if err := atomicfile.WriteFile(certsPath, []byte(b.String()), 0o644); err != nil {
			return err
		}
	}
	if serialsPath != "" {
		var b strings.Builder
		for _, is := range res.Issued {
			b.WriteString(is.Serial + "\n")
		}
		if err := atomicfile.WriteFile(serialsPath, []byte(b.String()), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func printBenchResult(r *runner, res *loadgen.Result) error {
	f := newFields(r.stdout)
	f.add("Requests", fmt.Sprintf("%d (%d clients, after %d warm-up)", res.Requests, res.Clients, res.Warmup))
	f.add("OK", fmt.Sprintf("%d", res.OK))
	f.add("Failed", fmt.Sprintf("%d", res.Failed))
	if res.NotSent > 0 {
		f.add("Not sent", fmt.Sprintf("%d (%s)", res.NotSent, res.Stopped))
	}
	f.add("Elapsed", fmt.Sprintf("%.3f s", res.ElapsedSeconds))
	f.add("Certificates/s", fmt.Sprintf("%.1f", res.CertsPerSecond))
	l := res.Latency
	f.add("Latency (ok)", fmt.Sprintf("p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms", l.P50, l.P90, l.P99, l.Max))
	if c := res.CPU; c != nil {
		perReq := ""
		if res.Failed > 0 {
			perReq = fmt.Sprintf(", %.3f ms per request", c.ServerMSPerRequest)
		}
		f.add("Server CPU", fmt.Sprintf("%.2f s (pid %s), %.3f ms per certificate%s", c.ServerSeconds, joinPIDs(c.ServerPIDs), c.ServerMSPerCert, perReq))
		f.add("Server switches", fmt.Sprintf("%d context switches, %.1f per certificate", c.ServerContextSwitches, c.ServerSwitchesPerCert))
		f.add("Other CPU", fmt.Sprintf("load generator %.2f s, other processes %.2f s (machine busy %.2f s)", c.LoadgenSeconds, c.OtherSeconds, c.MachineBusySeconds))
	}
	if ff := res.FirstFailure; ff != nil {
		f.add("First failure", fmt.Sprintf("%.3f s into the run, sent at %s (request %d): %s", ff.AfterSeconds, ff.At.Format("15:04:05.000Z07:00"), ff.Request, ff.Error))
	}
	if err := f.flush(); err != nil {
		return err
	}
	if res.Failed == 0 {
		return nil
	}
	fmt.Fprintln(r.stdout, "\nErrors by status:")
	for _, k := range slices.Sorted(maps.Keys(res.ErrorsByStatus)) {
		fmt.Fprintf(r.stdout, "  %-9s %d\n", k, res.ErrorsByStatus[k])
	}
	fmt.Fprintln(r.stdout, "Errors by message:")
	texts := slices.SortedFunc(maps.Keys(res.ErrorsByText), func(a, b string) int {
		return res.ErrorsByText[b] - res.ErrorsByText[a]
	})
	for _, k := range texts {
		fmt.Fprintf(r.stdout, "  %6d  %s\n", res.ErrorsByText[k], k)
	}
	return nil
}

// parsePIDs reads --server-pid: empty, or process IDs separated by commas.
func parsePIDs(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	var pids []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("want process IDs separated by commas, such as 4242 or 4242,4243,4244")
		}
		if slices.Contains(pids, n) {
			return nil, fmt.Errorf("process %d is named twice", n)
		}
		pids = append(pids, n)
	}
	return pids, nil
}

// joinPIDs writes pids as --server-pid takes them.
func joinPIDs(pids []int) string {
	s := make([]string, len(pids))
	for i, p := range pids {
		s[i] = strconv.Itoa(p)
	}
	return strings.Join(s, ",")
}
