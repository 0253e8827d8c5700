package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/certwright/certwright/internal/config"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRunPrintsConfig(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out syncBuffer
	secret := filepath.Join(t.TempDir(), "secret")
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-listen", "127.0.0.1:0", "-password", "pw", "-secret-file", secret}, &out, io.Discard)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "Serving until") {
		if time.Now().After(deadline) {
			t.Fatalf("no start-up output: %q", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{"alice", "bob", "pki-admins", "pki-viewers", "password pw"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	fi, err := os.Stat(secret)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("secret file: %v, %v", fi, err)
	}
	// The printed block is a valid auth.oidc configuration.
	block := text[strings.Index(text, "auth:"):strings.Index(text, "Serving until")]
	var c config.Config
	if err := c.Decode([]byte(block), "block.yaml"); err != nil {
		t.Fatalf("printed block does not decode: %v\n%s", err, block)
	}
	c.Defaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("printed block does not validate: %v", err)
	}
	if p := c.Auth.OIDC[0]; !regexp.MustCompile(`^http://127\.0\.0\.1:\d+$`).MatchString(p.Issuer) || p.ClientSecretFile != secret {
		t.Errorf("printed provider %+v", p)
	}
}

func TestRunRefusesNonLoopback(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"0.0.0.0:5556", ":5556", "192.0.2.1:5556", "localhost:5556"} {
		err := run(t.Context(), []string{"-listen", addr}, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "loopback") {
			t.Errorf("-listen %s: %v, want a refusal naming loopback", addr, err)
		}
	}
}

func TestReadConfig(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "idp.yaml")
	b, _ := yaml.Marshal(map[string]any{
		"users":   []map[string]any{{"username": "carol", "password": "c", "groups": []string{"g"}}},
		"clients": []map[string]any{{"id": "x", "redirect_uris": []string{"http://127.0.0.1/cb"}}},
	})
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := readConfig(path)
	if err != nil || len(opts.Users) != 1 || opts.Users[0].Username != "carol" || len(opts.Clients) != 1 {
		t.Fatalf("readConfig = %+v, %v", opts, err)
	}
	if err := os.WriteFile(path, []byte("users: []\nbogus: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readConfig(path); err == nil {
		t.Error("readConfig accepted an unknown key")
	}
}
