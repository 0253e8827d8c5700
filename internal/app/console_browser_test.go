package app

import (
	"context"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"golang.org/x/crypto/ocsp"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/profile"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// tChromium starts headless Chromium trusting only the key of in's TLS
// certificate, and collects every console error, exception and log entry
// of level error (a CSP violation is one) into problems.
func tChromium(t *testing.T, in *tInstance) (ctx context.Context, problems func() []string) {
	t.Helper()
	bin := "/usr/bin/chromium"
	if _, err := os.Stat(bin); err != nil {
		t.Skip("install chromium (Debian package chromium) to drive the console in a real browser")
	}
	spki := sha256.Sum256(in.servedLeaf().RawSubjectPublicKeyInfo)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900),
		chromedp.Flag("ignore-certificate-errors-spki-list", base64.StdEncoding.EncodeToString(spki[:])),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-quic", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	// The first Run starts the browser and must not carry the timeout.
	if err := chromedp.Do(bctx); err != nil {
		cancelBrowser()
		cancelAlloc()
		t.Fatalf("start chromium: %v", err)
	}
	tctx, cancelTimeout := context.WithTimeout(bctx, 90*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancelBrowser(); cancelAlloc() })
	var mu sync.Mutex
	var seen []string
	listen := chromedp.Listen(tctx, func(ev any) {
		var p string
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			p = "exception: " + e.ExceptionDetails.Text
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError {
				p = "console error"
			}
		case *cdplog.EventEntryAdded:
			if e.Entry.Level == cdplog.EntryLevelError || e.Entry.Level == cdplog.EntryLevelWarning {
				p = fmt.Sprintf("%s %s: %s (%s)", e.Entry.Level, e.Entry.Source, e.Entry.Text, e.Entry.URL)
			}
		}
		if p != "" {
			mu.Lock()
			seen = append(seen, p)
			mu.Unlock()
		}
	})
	if listen != nil {
		t.Fatalf("listen to chromium: %v", listen)
	}
	if _, err := chromedp.Call(tctx, cdplog.Enable, cdp.Empty{}); err != nil {
		t.Fatalf("chromium: Log.enable: %v", err)
	}
	if _, err := chromedp.Call(tctx, runtime.Enable, cdp.Empty{}); err != nil {
		t.Fatalf("chromium: Runtime.enable: %v", err)
	}
	// The page keeps the focus however the machine schedules windows:
	// without it, :focus styles (the skip link) do not apply in a page
	// the browser thinks is in the background.
	if _, err := chromedp.Call(tctx, emulation.SetFocusEmulationEnabled, emulation.SetFocusEmulationEnabledParams{Enabled: true}); err != nil {
		t.Fatalf("chromium: Emulation.setFocusEmulationEnabled: %v", err)
	}
	return tctx, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), seen...)
	}
}

// tTab is a Chromium tab on the console (tChromium): each step fails the
// test with the problems the browser reported so far, and a screenshot
// is written only when CERTWRIGHT_SCREENSHOTS names a folder.
type tTab struct {
	t        *testing.T
	ctx      context.Context
	problems func() []string
}

func tChromiumTab(t *testing.T, in *tInstance) *tTab {
	t.Helper()
	ctx, problems := tChromium(t, in)
	return &tTab{t: t, ctx: ctx, problems: problems}
}

func (b *tTab) step(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		b.t.Fatalf("chromium: %s: %v (problems so far: %v)", what, err, b.problems())
	}
}

func (b *tTab) text(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("chromium: text of %s: %v", sel, err)
	}
	return s
}

func (b *tTab) shot(name string) {
	b.t.Helper()
	dir := os.Getenv("CERTWRIGHT_SCREENSHOTS")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// tHeldRequest makes profile held_service, which requires approval, and
// has in's admin request held.example.internal under it.
func tHeldRequest(t *testing.T, in *tInstance) {
	t.Helper()
	held, _ := profile.Builtin("internal_service")
	held.Name, held.Builtin, held.RequireApproval = "held_service", false, true
	if err := in.app.profiles.Create(t.Context(), authz.System(), held); err != nil {
		t.Fatal(err)
	}
	if r := in.call("POST", "/api/v1/certificates/sign", apitypes.SignRequest{CSRPEM: string(tCSR(t, tECKey(t, elliptic.P256()), "held.example.internal")), Profile: "held_service"}); r.status != http.StatusAccepted {
		t.Fatalf("held request: %d %s", r.status, tTrim(r.body))
	}
}

// TestConsoleInChromium signs in to the console in a real browser, as a
// person would: the sign-in page, the overview with the seeded
// certificates counted, the inventory filtered, a certificate revoked
// from its page (and OCSP then says revoked), the audit log verified,
// sign-out; then a second principal approves the admin's held request. No page may log
// an error (a blocked resource, a CSP violation, a script error). With
// CERTWRIGHT_SCREENSHOTS=DIR it writes a screenshot of each view there.
func TestConsoleInChromium(t *testing.T) {
	t.Parallel()
	in := tNewServer(t, "")
	key := tECKey(t, elliptic.P256())
	var db apitypes.IssuedCertificate
	for _, n := range []string{"app-1.example.internal", "app-2.example.internal", "db.example.internal"} {
		db = in.sign(tCSR(t, key, n))
	}
	// A request held for approval, made by the admin, and an approver.
	tHeldRequest(t, in)
	var approver apitypes.CreatePrincipalResult
	in.must(http.StatusCreated, "POST", "/api/v1/principals",
		apitypes.CreatePrincipalRequest{Name: "ida", Kind: "human", Role: "approver", Token: true}, &approver)

	tab := tChromiumTab(t, in)
	ctx, problems, step, text, shot := tab.ctx, tab.problems, tab.step, tab.text, tab.shot
	base := in.l.HTTPSURL
	step("open the console", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#token")))
	loginURL, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	shot("sign-in")
	step("sign in", chromedp.SendKeys(chromedp.CSS("#token"), in.token), chromedp.Submit(chromedp.CSS("form.login")),
		chromedp.WaitVisible(chromedp.CSS("ul.tiles")))
	tiles := text("ul.tiles")
	shot("overview")
	step("open the inventory", chromedp.Click(chromedp.CSS(`nav a[href="/certificates"]`)), chromedp.WaitVisible(chromedp.CSS("table")))
	table := text("table")
	step("sort by expiry, then the other way", chromedp.Click(chromedp.CSS(`thead a[href="/certificates?sort=expiry"]`)),
		chromedp.WaitVisible(chromedp.CSS(`th[aria-sort="ascending"]`)),
		chromedp.Click(chromedp.CSS(`thead a[href="/certificates?dir=desc&sort=expiry"]`)),
		chromedp.WaitVisible(chromedp.CSS(`th[aria-sort="descending"]`)))
	step("save the view", chromedp.SetValue(chromedp.CSS(`form[action="/certificate-views"] input[name="name"]`), "Latest to expire"),
		chromedp.Submit(chromedp.CSS(`form[action="/certificate-views"]`)), chromedp.WaitVisible(chromedp.CSS(`ul.views a`)))
	if v := text("ul.views a"); v != "Latest to expire" {
		t.Errorf("saved view listed as %q", v)
	}
	shot("certificates")
	step("filter by name", chromedp.SetValue(chromedp.CSS(`form.filters input[name="name"]`), "db.example.internal"),
		chromedp.Submit(chromedp.CSS("form.filters")), chromedp.WaitVisible(chromedp.CSS("table")))
	afterFilter := text("table")
	step("open the certificate", chromedp.Click(chromedp.CSS(`table a[href="/certificates/`+db.Serial+`"]`)),
		chromedp.WaitVisible(chromedp.CSS("form.revoke")))
	// certificate.png comes from TestConsoleCertificateInChromium, whose
	// certificate has something in every section.
	step("revoke it", chromedp.SetValue(chromedp.CSS(`select[name="reason"]`), "key_compromise"),
		chromedp.Click(chromedp.CSS(`input[name="confirm"]`)), chromedp.Click(chromedp.CSS(`form.revoke button`)),
		chromedp.WaitVisible(chromedp.CSS("#rev")))
	revoked := text("main")
	if s := tOCSPStatus(t, in, tPEMCert(t, db.CertificatePEM), tPEMCert(t, db.ChainPEM)); s != ocsp.Revoked {
		t.Errorf("OCSP after revoking in the browser: %d, want revoked", s)
	}
	tOpenSSLOCSPSays(t, in, db.CertificatePEM, db.ChainPEM, "revoked")
	if !strings.Contains(revoked, "key_compromise") || !strings.Contains(revoked, "The certificate is revoked") {
		t.Errorf("after revoking, the page says %q", revoked)
	}
	step("open the CAs", chromedp.Click(chromedp.CSS(`nav a[href="/cas"]`)), chromedp.WaitVisible(chromedp.CSS("table")))
	if s := text("table"); !strings.Contains(s, "issuing") || !strings.Contains(s, "root") {
		t.Errorf("the CA page shows %q", s)
	}
	step("create an intermediate", chromedp.SendKeys(chromedp.CSS(`form[action="/cas"] input[name="name"]`), "team"),
		chromedp.SendKeys(chromedp.CSS(`form[action="/cas"] input[name="cn"]`), "Example Team CA"),
		chromedp.SendKeys(chromedp.CSS(`form[action="/cas"] input[name="permit_dns"]`), "team.example.internal"),
		chromedp.Click(chromedp.CSS(`form[action="/cas"] input[name="confirm"]`)),
		chromedp.Click(chromedp.CSS(`form[action="/cas"] button`)), chromedp.WaitVisible(chromedp.CSS(".notice.ok")))
	if s := text("table"); !strings.Contains(s, "team") || !strings.Contains(s, "permit DNS team.example.internal") {
		t.Errorf("after creating an intermediate, the CA page shows %q", s)
	}
	shot("cas")
	step("verify the audit log", chromedp.Click(chromedp.CSS(`nav a[href="/audit"]`)), chromedp.WaitVisible(chromedp.CSS(`form[action="/audit/verify"]`)),
		// The page already shows the audit-verify job's result; wait for
		// the answer to this verification.
		chromedp.Click(chromedp.CSS(`form[action="/audit/verify"] button`)),
		chromedp.WaitVisible(chromedp.CSS("#verified")))
	if s := text("#verified"); !strings.Contains(s, "The audit log is intact") {
		t.Errorf("after verifying, the audit page says %q", s)
	}
	shot("audit")
	step("create a principal with a token", chromedp.Click(chromedp.CSS(`nav a[href="/access"]`)),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/access/principals"]`)),
		chromedp.SendKeys(chromedp.CSS(`form[action="/access/principals"] input[name="name"]`), "release-bot"),
		chromedp.SetValue(chromedp.CSS(`form[action="/access/principals"] select[name="kind"]`), "machine"),
		chromedp.SetValue(chromedp.CSS(`form[action="/access/principals"] select[name="role"]`), "viewer"),
		chromedp.SendKeys(chromedp.CSS(`form[action="/access/principals"] input[name="cas"]`), "issuing"),
		chromedp.Click(chromedp.CSS(`form[action="/access/principals"] input[name="token"]`)),
		chromedp.Click(chromedp.CSS(`form[action="/access/principals"] button`)), chromedp.WaitVisible(chromedp.CSS("#newtoken")))
	minted := text("#newtoken")
	if r := in.raw("GET", "/api/v1/whoami", "Bearer "+minted, nil); r.status != http.StatusOK {
		t.Errorf("the token minted in the browser: %d, want 200", r.status)
	}
	shot("principal")
	step("open the access page", chromedp.Click(chromedp.CSS(`nav a[href="/access"]`)), chromedp.WaitVisible(chromedp.CSS(`a[href="/access/principals/release-bot"]`)))
	shot("access")
	step("sign out", chromedp.Click(chromedp.CSS("form.signout button")), chromedp.WaitVisible(chromedp.CSS("#token")))
	signedOut := text("main")
	step("sign in as the approver", chromedp.SendKeys(chromedp.CSS("#token"), approver.Token.Token),
		chromedp.Submit(chromedp.CSS("form.login")), chromedp.WaitVisible(chromedp.CSS(`nav a[href="/requests"]`)),
		chromedp.Click(chromedp.CSS(`nav a[href="/requests"]`)), chromedp.WaitVisible(chromedp.CSS("form.decide")))
	shot("approvals")
	step("approve", chromedp.SendKeys(chromedp.CSS(`form.decide input[name="comment"]`), "names checked"),
		chromedp.Click(chromedp.CSS(`form.decide button[type="submit"]:not([formaction])`)), chromedp.WaitVisible(chromedp.CSS(".notice.ok")))
	if s := text(".notice.ok"); !strings.Contains(s, "Approved; the certificate was issued") {
		t.Errorf("after approving, the page says %q", s)
	}
	if !strings.Contains(loginURL, "/login?ended=required") {
		t.Errorf("opening / without a session landed on %s", loginURL)
	}
	// The server's own certificate and the three seeded.
	if !strings.Contains(tiles, "4\nvalid") && !strings.Contains(tiles, "4 valid") {
		t.Errorf("overview tiles %q do not count 4 valid certificates", tiles)
	}
	for _, n := range []string{"app-1.example.internal", "app-2.example.internal", "db.example.internal"} {
		if !strings.Contains(table, n) {
			t.Errorf("inventory lacks %s: %q", n, table)
		}
	}
	if !strings.Contains(afterFilter, "db.example.internal") || strings.Contains(afterFilter, "app-1.example.internal") {
		t.Errorf("filtered by name, the inventory shows %q", afterFilter)
	}
	if !strings.Contains(signedOut, "You signed out.") {
		t.Errorf("after sign-out the page says %q", signedOut)
	}
	if p := problems(); len(p) > 0 {
		t.Errorf("the browser reported problems: %v", p)
	}
}

// tOpenSSLOCSPSays asks the instance's OCSP responder about the leaf with
// openssl ocsp, as the console's acceptance does, and wants status (good,
// revoked) in its verified answer.
func tOpenSSLOCSPSays(t *testing.T, in *tInstance, leafPEM, chainPEM, status string) {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("install openssl (Debian package openssl) to check OCSP with it")
	}
	dir := t.TempDir()
	leaf, chain := filepath.Join(dir, "leaf.pem"), filepath.Join(dir, "chain.pem")
	issuer := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tPEMCert(t, chainPEM).Raw})
	if err := os.WriteFile(leaf, []byte(leafPEM), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(chain, issuer, 0o600); err != nil {
		t.Fatal(err)
	}
	u := tPEMCert(t, leafPEM).OCSPServer[0]
	path := u[strings.Index(u[len("http://"):], "/")+len("http://"):]
	out, err := exec.Command("openssl", "ocsp", "-issuer", chain, "-cert", leaf, "-url", in.l.HTTPURL+path,
		"-CAfile", filepath.Join(in.cfg.DataDir, RootFile), "-no_nonce").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl ocsp: %v: %s", err, out)
	}
	if !strings.Contains(string(out), "Response verify OK") || !strings.Contains(string(out), leaf+": "+status) {
		t.Errorf("openssl ocsp says %s, want %s", out, status)
	}
}
