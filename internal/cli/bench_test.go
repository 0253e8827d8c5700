package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/loadgen"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/web/apitypes"
)

func TestBenchIssueUsage(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--count", "0"}, "--count 0: want 1 to"},
		{[]string{"--count", strconv.Itoa(loadgen.MaxCount + 1)}, "want 1 to"},
		{[]string{"--clients", "0"}, "--clients 0"},
		{[]string{"--warmup", "-1"}, "--warmup -1"},
		{[]string{"--key", "ed25519"}, "--key ed25519"},
		{[]string{"--max-duration", "0s"}, "must be positive"},
		{[]string{"--timeout", "-1s"}, "must be positive"},
		{[]string{"--server-pid", "-3"}, `--server-pid "-3": want process IDs`},
		{[]string{"--server-pid", "12,x"}, `--server-pid "12,x": want process IDs`},
		{[]string{"--server-pid", "12,12"}, "process 12 is named twice"},
	} {
		args := append([]string{"bench", "issue"}, c.args...)
		code, _, errOut := run(t, nil, args...)
		if code != exitUsage || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, stderr %q, want exit %d and %q", c.args, code, errOut, exitUsage, c.want)
		}
	}
}

// benchReport runs "bench issue --json" with env and returns its report,
// its exit code and its stderr.
func benchReport(t *testing.T, env map[string]string, stderr *syncBuffer, args ...string) (loadgen.Result, int, string) {
	t.Helper()
	var out bytes.Buffer
	code := Main(context.Background(), append([]string{"bench", "issue", "--json"}, args...), strings.NewReader(""), &out, stderr,
		func(k string) string { return env[k] })
	var res loadgen.Result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("bench issue: exit %d, report %q: %v\nstderr: %s", code, out.String(), err, stderr.String())
	}
	return res, code, stderr.String()
}

// syncBuffer is a buffer written by Main and read by the test while it runs.
type syncBuffer struct {
	mu   sync.Mutex
	b    bytes.Buffer
	seen map[string]chan struct{}
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.b.Write(p)
	for text, ch := range s.seen {
		if strings.Contains(s.b.String(), text) {
			close(ch)
			delete(s.seen, text)
		}
	}
	return n, err
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// when returns a channel closed once text has been written.
func (s *syncBuffer) when(text string) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen == nil {
		s.seen = map[string]chan struct{}{}
	}
	ch := make(chan struct{})
	s.seen[text] = ch
	return ch
}

// TestBenchIssueLive runs bench issue against a real server: every request
// issues a certificate the store holds, the files list each one, and a
// token revoked in the middle of a run turns the next requests into 401s
// with the time of the first one reported.
func TestBenchIssueLive(t *testing.T) {
	t.Parallel()
	dataDir, _, _ := liveServer(t)
	admin := map[string]string{"CERTWRIGHT_DATA_DIR": dataDir}
	adminToken, err := os.ReadFile(filepath.Join(dataDir, tokenFile))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("counts and saved certificates", func(t *testing.T) {
		dir := t.TempDir()
		serials, certs := filepath.Join(dir, "serials.txt"), filepath.Join(dir, "certs.pem")
		var errb syncBuffer
		res, code, errOut := benchReport(t, admin, &errb, "--clients", "4", "--count", "50", "--warmup", "5",
			"--serials", serials, "--save-certs", certs, "--server-pid", strconv.Itoa(os.Getpid()))
		if code != 0 || res.Requests != 50 || res.OK != 50 || res.Failed != 0 || res.NotSent != 0 || res.FirstFailure != nil {
			t.Fatalf("exit %d, report %+v\n%s", code, res, errOut)
		}
		if res.CertsPerSecond <= 0 || res.Latency.P50 <= 0 || res.Latency.P50 > res.Latency.P99 || res.Latency.P99 > res.Latency.Max {
			t.Errorf("rate %v, latency %+v", res.CertsPerSecond, res.Latency)
		}
		if res.CPU == nil || !slices.Equal(res.CPU.ServerPIDs, []int{os.Getpid()}) || res.CPU.ServerContextSwitches == 0 || res.CPU.ServerSeconds <= 0 || res.CPU.ServerMSPerCert <= 0 {
			t.Errorf("server CPU %+v", res.CPU)
		}
		if strings.Contains(errOut, strings.TrimSpace(string(adminToken))) {
			t.Error("bench issue printed the token")
		}
		lines := strings.Fields(string(mustRead(t, serials)))
		parsed, err := pki.ParseCertificates(mustRead(t, certs))
		if err != nil || len(lines) != 55 || len(parsed) != 55 {
			t.Fatalf("%d serials, %d certificates (%v); want 55 each (warm-up included)", len(lines), len(parsed), err)
		}
		saved := map[string]bool{}
		for _, c := range parsed {
			saved[pki.SerialHex(c.SerialNumber)] = true
		}
		for _, s := range lines {
			if !saved[s] {
				t.Errorf("serial %s is not among the saved certificates", s)
			}
			code, out, errOut := run(t, admin, "cert", "show", s, "--json")
			var got apitypes.Certificate
			if code != 0 || json.Unmarshal([]byte(out), &got) != nil || got.Serial != s || got.Status != "valid" {
				t.Fatalf("cert show %s: exit %d %s%s", s, code, out, errOut)
			}
		}
	})

	t.Run("token revoked mid-run", func(t *testing.T) {
		dir := t.TempDir()
		tokenPath := filepath.Join(dir, "bot.token")
		if code, _, errOut := run(t, admin, "principal", "create", "loadbot", "--kind", "machine", "--role", "issuer"); code != 0 {
			t.Fatalf("principal create: exit %d %s", code, errOut)
		}
		code, out, errOut := run(t, admin, "token", "create", "loadbot", "--out", tokenPath, "--json")
		var tok apitypes.NewToken
		if code != 0 || json.Unmarshal([]byte(out), &tok) != nil || tok.Record.ID == "" {
			t.Fatalf("token create: exit %d %s%s", code, out, errOut)
		}
		bot := map[string]string{"CERTWRIGHT_DATA_DIR": dataDir, "CERTWRIGHT_TOKEN_FILE": tokenPath}

		var errb syncBuffer
		started := errb.when("Sending ")
		revoked := make(chan time.Time, 1)
		go func() {
			<-started
			time.Sleep(300 * time.Millisecond)
			if code, _, errOut := run(t, admin, "token", "revoke", tok.Record.ID); code != 0 {
				t.Errorf("token revoke: exit %d %s", code, errOut)
			}
			revoked <- time.Now()
		}()
		// One client: the first failure by time sent is then the first the
		// server refused. With two, a request sent just before the other
		// client's run of 401s could reach the server after them, find the
		// source's refusal budget spent, and be the "first" failure, a 429.
		res, code, errOut := benchReport(t, bot, &errb, "--clients", "1", "--count", "1500", "--warmup", "0", "--max-duration", "20s")
		<-revoked
		if code != exitError || !strings.Contains(errOut, "requests failed") || !strings.Contains(errOut, "the first failure came") {
			t.Errorf("exit %d, stderr %s", code, errOut)
		}
		if res.OK == 0 || res.ErrorsByStatus["401"] == 0 || res.OK+res.Failed != res.Requests {
			t.Fatalf("report %+v: want some issued, then 401s", res)
		}
		ff := res.FirstFailure
		if ff == nil || ff.Status != 401 || ff.AfterSeconds < 0.2 || ff.AfterSeconds > res.ElapsedSeconds {
			t.Fatalf("first failure %+v (elapsed %.3f s): want a 401 after the revocation", ff, res.ElapsedSeconds)
		}
		if !strings.Contains(ff.Error, "401") {
			t.Errorf("first failure text %q", ff.Error)
		}
	})
}
