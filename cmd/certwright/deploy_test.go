package main

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// deployDir is the repository's deploy directory, seen from this package.
const deployDir = "../../deploy"

// TestSystemdUnits runs systemd-analyze verify on the shipped units (with
// ExecStart pointing at an executable that exists here) and fails on any
// complaint, warnings included; it also checks the server unit's hardening.
func TestSystemdUnits(t *testing.T) {
	t.Parallel()
	tool, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not found: install systemd (apt-get install systemd) to verify deploy/systemd")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var units []string
	for _, name := range []string{"certwright.service", "certwright-agent.service"} {
		b, err := os.ReadFile(filepath.Join(deployDir, "systemd", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(b, []byte("ExecStart=/usr/local/bin/certwright ")) {
			t.Errorf("%s: ExecStart does not run /usr/local/bin/certwright", name)
		}
		b = bytes.ReplaceAll(b, []byte("/usr/local/bin/certwright"), []byte(self))
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		units = append(units, path)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, tool, append([]string{"verify", "--man=no"}, units...)...).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}

	server, err := os.ReadFile(filepath.Join(deployDir, "systemd", "certwright.service"))
	if err != nil {
		t.Fatal(err)
	}
	lines := map[string]bool{}
	for _, l := range strings.Split(string(server), "\n") {
		lines[strings.TrimSpace(l)] = true
	}
	for _, want := range []string{"User=certwright", "ProtectSystem=strict", "NoNewPrivileges=yes",
		"ReadWritePaths=/var/lib/certwright", "CapabilityBoundingSet=", "AmbientCapabilities=",
		"ExecStart=/usr/local/bin/certwright serve --data-dir /var/lib/certwright/data"} {
		if !lines[want] {
			t.Errorf("certwright.service lacks the line %q", want)
		}
	}
}

// TestDockerfile checks the image's final stage: FROM scratch (or
// distroless), only copies from the build stage, a non-root user and a data
// volume; and that the build stage builds a static binary.
func TestDockerfile(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var stages [][]string
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if strings.HasPrefix(l, "FROM ") {
			stages = append(stages, nil)
		}
		if len(stages) > 0 {
			stages[len(stages)-1] = append(stages[len(stages)-1], l)
		}
	}
	if len(stages) < 2 {
		t.Fatalf("want a build stage and a final stage, got %d stages", len(stages))
	}
	if build := strings.Join(stages[0], "\n"); !strings.Contains(build, "CGO_ENABLED=0 go build") {
		t.Errorf("the build stage does not build with CGO_ENABLED=0:\n%s", build)
	}
	final := stages[len(stages)-1]
	if f := final[0]; f != "FROM scratch" && !strings.HasPrefix(f, "FROM gcr.io/distroless/") {
		t.Errorf("final stage %q, want FROM scratch or distroless", f)
	}
	var user, volume bool
	for _, l := range final[1:] {
		word, rest, _ := strings.Cut(l, " ")
		switch word {
		case "COPY":
			if !strings.HasPrefix(rest, "--from=build ") {
				t.Errorf("final stage copies from outside the build stage: %s", l)
			}
		case "RUN", "ADD":
			t.Errorf("final stage runs or adds something: %s", l)
		case "USER":
			user = true
			if u, _, _ := strings.Cut(rest, ":"); u == "0" || u == "root" {
				t.Errorf("final stage runs as root: %s", l)
			}
		case "VOLUME":
			volume = true
		}
	}
	if !user || !volume {
		t.Errorf("final stage: USER %v, VOLUME %v; want both", user, volume)
	}
}

// TestStaticBinaryServes starts the static binary the Dockerfile's final
// stage holds (built with CGO_ENABLED=0 go build -trimpath ./cmd/certwright,
// named by CERTWRIGHT_TEST_STATIC_BINARY; building it here would take
// minutes) from a clean directory and checks that it is static and that
// serve answers /healthz.
func TestStaticBinaryServes(t *testing.T) {
	t.Parallel()
	bin := os.Getenv("CERTWRIGHT_TEST_STATIC_BINARY")
	if bin == "" {
		t.Skip("set CERTWRIGHT_TEST_STATIC_BINARY to a binary built with CGO_ENABLED=0 go build -trimpath -o FILE ./cmd/certwright to run this test")
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s has a dynamic loader: not a static binary (build with CGO_ENABLED=0)", bin)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("%s links %v: not a static binary", bin, libs)
	}
	f.Close()

	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "serve", "--data-dir", filepath.Join(dir, "data"),
		"--https-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0")
	cmd.Dir = dir
	cmd.Env = []string{"HOME=" + dir}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 20 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	httpURL := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "revocation data (HTTP):"); ok {
				httpURL <- strings.TrimSpace(u)
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case u := <-httpURL:
		c := &http.Client{Timeout: 10 * time.Second}
		resp, err := c.Get(u + "/healthz")
		if err != nil {
			t.Fatalf("GET %s/healthz: %v", u, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s/healthz: %d", u, resp.StatusCode)
		}
	case <-ctx.Done():
		t.Fatalf("serve printed no banner within 90s\n%s", stderr.String())
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("serve after SIGTERM: %v\n%s", err, stderr.String())
	}
}
