package app

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/config"
	"github.com/certwright/certwright/internal/notify/notifytest"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// String returns what was written, when w is a *bytes.Buffer.
func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.(*bytes.Buffer).String()
}

// tReloadable starts an instance whose configuration is its data
// directory's config.yaml, with a logger at a changeable level, and returns
// it with its reloader and log.
func tReloadable(t *testing.T, edit func(*config.Config)) (*tInstance, *Reloader, *syncWriter, string) {
	t.Helper()
	cfg := tConfig(t, "")
	tInit(t, cfg, clock.Real{})
	edit(cfg)
	if err := cfg.Save(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(cfg.DataDir, config.FileName)
	load := func() (*config.Config, error) { return config.ReadFile(path, cfg.DataDir) }
	started, err := load()
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncWriter{w: &bytes.Buffer{}}
	level := new(slog.LevelVar)
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: level}))
	in := tStartLogged(t, started, clock.Real{}, log)
	return in, in.app.NewReloader(level, load), logs, path
}

// tWebhook starts a webhook receiver on loopback.
func tWebhook(t *testing.T) *notifytest.WebhookReceiver {
	t.Helper()
	h, err := notifytest.StartWebhook(notifytest.WebhookOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// tRewriteConfig changes the configuration file through edit.
func tRewriteConfig(t *testing.T, path, dataDir string, edit func(*config.Config)) {
	t.Helper()
	c, err := config.ReadFile(path, dataDir)
	if err != nil {
		t.Fatal(err)
	}
	edit(c)
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
}

func tChange(changes []Change, key string) (Change, bool) {
	for _, c := range changes {
		if c.Key == key {
			return c, true
		}
	}
	return Change{}, false
}

// TestReloadAppliesLiveSettings changes an alert channel, the log level,
// a job interval and a listen address in the file of a running server:
// the new channel takes the next test alert, debug lines appear, the
// listen address is reported as needing a restart, and secrets stay out
// of the log.
func TestReloadAppliesLiveSettings(t *testing.T) {
	t.Parallel()
	oldHook, newHook := tWebhook(t), tWebhook(t)
	const token = "tok3n-in-the-url"
	in, rl, logs, path := tReloadable(t, func(c *config.Config) {
		c.Alerts = config.AlertsConfig{Channels: []config.ChannelConfig{{Name: "old-hook", Type: "webhook", URL: oldHook.URL}}}
	})
	in.must(http.StatusOK, "POST", "/api/v1/alerts/test", apitypes.AlertTestRequest{Channel: "old-hook"}, nil)
	if n := len(oldHook.Requests()); n != 1 {
		t.Fatalf("old channel got %d requests before the reload, want 1", n)
	}

	// Nothing changed yet: a reload reports nothing.
	changes, err := rl.Reload(context.Background())
	if err != nil || len(changes) != 0 {
		t.Fatalf("reload of the unchanged file: %v, %+v", err, changes)
	}

	tRewriteConfig(t, path, in.cfg.DataDir, func(c *config.Config) {
		c.Alerts = config.AlertsConfig{Channels: []config.ChannelConfig{{Name: "new-hook", Type: "webhook", URL: newHook.URL + "?token=" + token}}}
		c.LogLevel = "debug"
		c.Lifecycle.ExpiryCheckInterval = "90s"
		c.HTTPSListen = "127.0.0.1:1"
	})
	in.app.log.Debug("probe before the reload")
	// Requests keep flowing while the reload swaps the settings.
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { in.call("POST", "/api/v1/alerts/test", apitypes.AlertTestRequest{Channel: "old-hook"}) })
	}
	changes, err = rl.Reload(context.Background())
	wg.Wait()
	if err != nil {
		t.Fatalf("Reload: %v", err)
	}
	in.app.log.Debug("probe after the reload")

	for key, effect := range map[string]string{
		"alerts.channels[0].name": EffectLive, "alerts.channels[0].url": EffectLive, "log_level": EffectLive,
		"lifecycle.expiry_check_interval": EffectLive, "https_listen": EffectRestart,
	} {
		c, ok := tChange(changes, key)
		if !ok || c.Effect != effect {
			t.Errorf("change of %s: %+v (found %v), want effect %q", key, c, ok, effect)
		}
	}
	if c, _ := tChange(changes, "alerts.channels[0].url"); !c.Secret || c.To != "" {
		t.Errorf("alert channel URL change carries its value: %+v", c)
	}

	in.must(http.StatusOK, "POST", "/api/v1/alerts/test", apitypes.AlertTestRequest{Channel: "new-hook"}, nil)
	if got := newHook.Requests(); len(got) != 1 || !strings.Contains(string(got[0].Body), "new-hook") {
		t.Fatalf("new channel after the reload got %+v", got)
	}
	if r := in.call("POST", "/api/v1/alerts/test", apitypes.AlertTestRequest{Channel: "old-hook"}); r.status != http.StatusNotFound {
		t.Errorf("the removed channel still answers: %d %s", r.status, r.body)
	}
	if got := in.app.scheduler.Interval("expiry-check"); got != 90*time.Second {
		t.Errorf("expiry-check interval %v after the reload, want 90s", got)
	}

	out := logs.String()
	if strings.Contains(out, "probe before the reload") || !strings.Contains(out, "probe after the reload") {
		t.Errorf("log level did not change from info to debug:\n%s", out)
	}
	for _, want := range []string{
		`msg="configuration changed" key=log_level from=info to=debug effect="applied live"`,
		`msg="configuration changed" key=https_listen from=127.0.0.1:0 to=127.0.0.1:1 effect="needs a restart"`,
		`key=alerts.channels[0].url effect="applied live"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, token) || strings.Contains(out, newHook.URL) {
		t.Errorf("the log holds the webhook URL:\n%s", out)
	}

	// The restart-only key stays pending on the next reload; the live
	// ones are now the running values.
	changes, err = rl.Reload(context.Background())
	if err != nil || len(changes) != 1 || changes[0].Key != "https_listen" {
		t.Errorf("second reload: %v, %+v; want only https_listen pending", err, changes)
	}
}

// TestReloadRefusesInvalidFile: broken YAML, an unknown key, a bad value
// and an unreadable secret file are each refused with the file and line,
// and the running configuration keeps working.
func TestReloadRefusesInvalidFile(t *testing.T) {
	t.Parallel()
	hook := tWebhook(t)
	in, rl, logs, path := tReloadable(t, func(c *config.Config) {
		c.Alerts = config.AlertsConfig{Channels: []config.ChannelConfig{{Name: "ops-hook", Type: "webhook", URL: hook.URL}}}
	})
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	next := strconv.Itoa(strings.Count(string(good), "\n") + 1) // the line an appended key is on
	tests := []struct {
		name string
		body func(good string) string
		want []string // in the error
	}{
		{"broken YAML", func(g string) string { return g + "log_level: [debug\n" }, []string{config.FileName + ":", "not valid YAML"}},
		{"unknown key", func(g string) string { return g + "acme_limits:\n  orders: 3\n" },
			[]string{config.FileName + ":" + next + ": acme_limits: unknown field (known fields: acme, alerts, approval,"}},
		{"bad value", func(g string) string { return strings.Replace(g, "log_level: info\n", "", 1) + "log_level: loud\n" },
			[]string{config.FileName + ":" + strconv.Itoa(strings.Count(string(good), "\n")) + ": log_level: \"loud\": want debug, info, warn or error"}},
		{"missing secret file", func(g string) string {
			// The line after the channel's url, indented as it is.
			i := strings.Index(g, "url: "+hook.URL+"\n")
			indent := g[strings.LastIndex(g[:i], "\n")+1 : i]
			end := i + len("url: "+hook.URL+"\n")
			return g[:end] + indent + "secret_file: no-such-secret\n" + g[end:]
		}, []string{"secret_file", "no-such-secret"}},
	}
	for _, tt := range tests {
		body := tt.body(string(good))
		if body == string(good) {
			t.Fatalf("%s: the edit changed nothing:\n%s", tt.name, body)
		}
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := rl.Reload(context.Background())
		if err == nil {
			t.Fatalf("%s: reload accepted:\n%s", tt.name, body)
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q lacks %q", tt.name, err, w)
			}
		}
		if !strings.Contains(logs.String(), "configuration reload refused; the running configuration is unchanged") {
			t.Errorf("%s: refusal not logged:\n%s", tt.name, logs.String())
		}
		in.must(http.StatusOK, "POST", "/api/v1/alerts/test", apitypes.AlertTestRequest{Channel: "ops-hook"}, nil)
	}
	if n := len(hook.Requests()); n != len(tests) {
		t.Errorf("the running channel took %d test alerts, want %d", n, len(tests))
	}
	// Restored, the file reloads with nothing to change.
	if err := os.WriteFile(path, good, 0o600); err != nil {
		t.Fatal(err)
	}
	if changes, err := rl.Reload(context.Background()); err != nil || len(changes) != 0 {
		t.Errorf("reload of the restored file: %v, %+v", err, changes)
	}
}

// TestReloadReissuesServerCertificateForNewTLSNames: tls_names changed in
// the file take effect on reload, without a restart: the next handshake
// gets a certificate for the new names, and the change is logged as live.
func TestReloadReissuesServerCertificateForNewTLSNames(t *testing.T) {
	t.Parallel()
	in, rl, logs, path := tReloadable(t, func(*config.Config) {})
	before := in.servedLeaf()
	tRewriteConfig(t, path, in.app.cfg.DataDir, func(c *config.Config) {
		c.TLSNames = []string{"127.0.0.1", "pki.example.internal"}
	})
	changes, err := rl.Reload(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := tChange(changes, "tls_names"); !ok || !c.Live {
		t.Fatalf("tls_names change %+v (found %v), want applied live; log:\n%s", c, ok, logs.String())
	}
	after := in.servedLeaf()
	if after.SerialNumber.Cmp(before.SerialNumber) == 0 {
		t.Fatal("tls_names changed on reload but the old server certificate is still served")
	}
	if err := after.VerifyHostname("pki.example.internal"); err != nil {
		t.Errorf("re-issued certificate: %v", err)
	}
	if !strings.Contains(logs.String(), "tls_names changed") {
		t.Errorf("no log line for the re-issue:\n%s", logs.String())
	}

	// An invalid name is refused as a whole: the served certificate stays.
	tRewriteConfig(t, path, in.app.cfg.DataDir, func(c *config.Config) { c.TLSNames = []string{"bad name"} })
	if _, err := rl.Reload(context.Background()); err == nil {
		t.Fatal("reload accepted an invalid tls_names entry")
	}
	if s := in.servedLeaf().SerialNumber; s.Cmp(after.SerialNumber) != 0 {
		t.Error("a refused reload replaced the server certificate")
	}
}
