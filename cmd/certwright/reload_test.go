package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// syncBuffer collects a process's output for concurrent reading.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor polls cond every 50ms until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, out *syncBuffer, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v; server output:\n%s", what, d, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSIGHUPReloadsTheRealBinary builds certwright, runs serve on loopback
// ports in a temporary data directory, edits config.yaml and sends a real
// SIGHUP: the process lives on and logs what it applied and what needs a
// restart; a broken file on the next SIGHUP is refused with its line.
func TestSIGHUPReloadsTheRealBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	t.Parallel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "certwright")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	data := filepath.Join(dir, "data")
	if out, err := exec.Command(bin, "init", "--data-dir", data, "--https-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0").CombinedOutput(); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := exec.CommandContext(ctx, bin, "serve", "--data-dir", data)
	out := &syncBuffer{}
	srv.Stdout, srv.Stderr = out, out
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- srv.Wait() }()
	t.Cleanup(func() {
		_ = srv.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = srv.Process.Kill()
			<-exited
		}
	})
	waitFor(t, time.Minute, "serve starts", out, func() bool { return strings.Contains(out.String(), "Certwright is serving") })

	path := filepath.Join(data, "config.yaml")
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.NewReplacer("log_level: info", "log_level: debug", "orders_per_hour: 300", "orders_per_hour: 40",
		"https_listen: 127.0.0.1:0", "https_listen: 127.0.0.1:1").Replace(string(orig))
	if err := os.WriteFile(path, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := srv.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the reload is logged", out, func() bool {
		return strings.Contains(out.String(), `msg="configuration reloaded" applied_live=2 needs_restart=1`)
	})
	log := out.String()
	for _, want := range []string{
		`key=log_level from=info to=debug effect="applied live"`,
		`key=acme.orders_per_hour from=300 to=40 effect="applied live"`,
		`key=https_listen from=127.0.0.1:0 to=127.0.0.1:1 effect="needs a restart"`,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}

	// A broken file: refused with file and line, and the server lives on.
	if err := os.WriteFile(path, append([]byte(edited), "acme:\n  workers: [\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := srv.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	lines := strings.Count(edited, "\n")
	wantRefusal := fmt.Sprintf("configuration reload refused; the running configuration is unchanged\" err=\"config: invalid configuration: %s:%d: not valid YAML", path, lines+2)
	waitFor(t, 30*time.Second, "the refusal is logged", out, func() bool { return strings.Contains(out.String(), wantRefusal) })
	select {
	case err := <-exited:
		t.Fatalf("serve exited after SIGHUP: %v\n%s", err, out)
	default:
	}
	if code := healthz(t, data); code != http.StatusOK {
		t.Errorf("/healthz after two reloads: %d", code)
	}
}

// healthz asks the server of data dir for /healthz over HTTPS, trusting
// only its root.
func healthz(t *testing.T, data string) int {
	t.Helper()
	c, base, err := client(data)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseIdleConnections()
	resp, err := c.Get(base + "/healthz")
	if err != nil {
		t.Fatalf("/healthz: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
