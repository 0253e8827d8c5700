package app

import (
	"bufio"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A benchmark whose figure is the server's CPU per operation runs its
// clients in a child process: the test binary again, running only
// TestBenchClientHelper with benchChildEnv naming what to do. The
// benchmark's own RUSAGE_SELF is then the server's alone.
//
// Parent and child speak in lines: the child writes "BENCHCHILD <word>
// <JSON>" on its standard output (anything else there is the test
// framework's and is kept for the failure message) and reads one
// "<word> <JSON>" line at a time on its standard input.
const (
	benchChildEnv    = "CERTWRIGHT_BENCH_CHILD"
	benchChildPrefix = "BENCHCHILD "
)

// TestBenchClientHelper is the client side of a benchmark; it runs only
// as a child process of one.
func TestBenchClientHelper(t *testing.T) {
	mode := os.Getenv(benchChildEnv)
	if mode == "" {
		t.Skip("the client process of BenchmarkIssueHTTPS and BenchmarkACMEOrders")
	}
	in := bufio.NewScanner(os.Stdin)
	switch mode {
	case "issue":
		benchChildIssue(t, in)
	case "acme":
		benchChildACME(t, in)
	case "est":
		benchChildEST(t, in)
	case "scep":
		benchChildSCEP(t, in)
	default:
		t.Fatalf("unknown %s %q", benchChildEnv, mode)
	}
}

// benchCPU is this process's user + system CPU time so far.
func benchCPU(tb testing.TB) time.Duration {
	tb.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// childSay writes a protocol line to the parent.
func childSay(t *testing.T, word string, v any) {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("%s%s %s\n", benchChildPrefix, word, data)
}

// childHear reads the parent's next line, which must be word, into v.
func childHear(t *testing.T, in *bufio.Scanner, word string, v any) {
	t.Helper()
	if !in.Scan() {
		t.Fatalf("waiting for %q from the benchmark: %v", word, in.Err())
	}
	got, data, _ := strings.Cut(in.Text(), " ")
	if got != word {
		t.Fatalf("from the benchmark: %q, want %q", in.Text(), word)
	}
	if v != nil {
		if err := json.Unmarshal([]byte(data), v); err != nil {
			t.Fatalf("from the benchmark: %q: %v", in.Text(), err)
		}
	}
}

// benchChild is a running client process, seen from the benchmark.
type benchChild struct {
	b     *testing.B
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Scanner
	other []string // non-protocol output, for the failure message
	errb  strings.Builder
}

// startBenchChild runs TestBenchClientHelper in mode with env added.
func startBenchChild(b *testing.B, mode string, env ...string) *benchChild {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestBenchClientHelper$", "-test.count=1", "-test.timeout=10m")
	cmd.Env = append(append(os.Environ(), benchChildEnv+"="+mode), env...)
	c := &benchChild{b: b, cmd: cmd}
	cmd.Stderr = &c.errb
	var err error
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	c.out = bufio.NewScanner(stdout)
	c.out.Buffer(make([]byte, 64<<10), 16<<20)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		c.stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	return c
}

// say sends the child a line.
func (c *benchChild) say(word string, v any) {
	c.b.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		c.b.Fatal(err)
	}
	if _, err := fmt.Fprintf(c.stdin, "%s %s\n", word, data); err != nil {
		c.b.Fatalf("to the client process: %v", err)
	}
}

// hear waits for the child's line word and decodes it into v; a child
// that ends first fails the benchmark with what it printed.
func (c *benchChild) hear(word string, v any) {
	c.b.Helper()
	for c.out.Scan() {
		line, ok := strings.CutPrefix(c.out.Text(), benchChildPrefix)
		if !ok {
			c.other = append(c.other, c.out.Text())
			continue
		}
		got, data, _ := strings.Cut(line, " ")
		if got != word {
			c.b.Fatalf("client process said %q, want %q", line, word)
		}
		if err := json.Unmarshal([]byte(data), v); err != nil {
			c.b.Fatalf("client process: %q: %v", line, err)
		}
		return
	}
	_ = c.cmd.Wait()
	c.b.Fatalf("client process ended before %q (%v):\n%s\n%s", word, c.out.Err(), strings.Join(c.other, "\n"), c.errb.String())
}

// measure is the timed section: it tells the ready child to go, waits for
// its result into out, and returns this process's CPU time in between.
func (c *benchChild) measure(out any) time.Duration {
	c.b.Helper()
	c.hear("ready", &struct{}{})
	c.b.ReportAllocs()
	c.b.ResetTimer()
	cpu0 := benchCPU(c.b)
	c.say("go", nil)
	c.hear("result", out)
	cpu := benchCPU(c.b) - cpu0
	c.b.StopTimer()
	return cpu
}

// benchRoots is the pool of the root certificates in the PEM file path.
func benchRoots(t *testing.T, path string) *x509.CertPool {
	t.Helper()
	rootPEM, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(rootPEM) {
		t.Fatalf("%s: no certificate", path)
	}
	return pool
}
