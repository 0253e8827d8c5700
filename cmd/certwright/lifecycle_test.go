package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/certwright/certwright/internal/notify/notifytest"
)

// Script commands for the lifecycle scripts.
var lifecycleCmds = map[string]func(ts *testscript.TestScript, neg bool, args []string){
	"receivers":  receivers,
	"countfiles": countFiles,
}

// receivers DIR: run a real SMTP server (STARTTLS) and a webhook receiver
// on loopback until the script ends. Mail lands in DIR/mail/NNN.eml and
// webhook bodies in DIR/hooks/NNN.json; $SMTP_ADDR and $HOOK_URL are set,
// and DIR/smtp-ca.pem holds the SMTP server's certificate.
func receivers(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: receivers DIR")
	}
	dir := ts.MkAbs(args[0])
	if err := os.MkdirAll(dir, 0o700); err != nil {
		ts.Fatalf("%v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	ts.Defer(func() {
		cancel()
		for range 2 {
			<-done
		}
	})
	addrFile, urlFile := filepath.Join(dir, "smtp.addr"), filepath.Join(dir, "hook.url")
	go func() {
		done <- notifytest.ServeSMTPUntil(ctx, notifytest.SMTPOptions{TLS: notifytest.TLSStartTLS}, addrFile, filepath.Join(dir, "mail"))
	}()
	go func() {
		done <- notifytest.ServeWebhookUntil(ctx, notifytest.WebhookOptions{}, urlFile, filepath.Join(dir, "hooks"))
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		a, errA := os.ReadFile(addrFile)
		u, errU := os.ReadFile(urlFile)
		if errA == nil && errU == nil {
			crt, err := os.ReadFile(addrFile + ".crt")
			if err != nil {
				ts.Fatalf("%v", err)
			}
			if err := os.WriteFile(filepath.Join(dir, "smtp-ca.pem"), crt, 0o644); err != nil {
				ts.Fatalf("%v", err)
			}
			ts.Setenv("SMTP_ADDR", strings.TrimSpace(string(a)))
			ts.Setenv("HOOK_URL", strings.TrimSpace(string(u)))
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("receivers did not start within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// countfiles DIR N [SECONDS]: DIR holds exactly N files, waiting up to
// SECONDS (default 10) for them to arrive, then one more second to be
// sure no more do.
func countFiles(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 || len(args) > 3 {
		ts.Fatalf("usage: countfiles DIR N [SECONDS]")
	}
	want, err := strconv.Atoi(args[1])
	if err != nil {
		ts.Fatalf("N: %v", err)
	}
	wait := 10
	if len(args) == 3 {
		if wait, err = strconv.Atoi(args[2]); err != nil {
			ts.Fatalf("SECONDS: %v", err)
		}
	}
	count := func() int {
		es, _ := os.ReadDir(ts.MkAbs(args[0]))
		return len(es)
	}
	deadline := time.Now().Add(time.Duration(wait) * time.Second)
	for count() < want && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second)
	if got := count(); got != want {
		ts.Fatalf("%s holds %d files, want %d", args[0], got, want)
	}
}
