package app

import (
	"context"
	"crypto/elliptic"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"golang.org/x/crypto/ocsp"
)

// tSSOTab is a Chromium tab in a browser of its own (a fresh user data
// dir, so no cookie of another person's) whose steps together must end
// within limit, and the URLs of the pages its top frame showed, in order.
func tSSOTab(t *testing.T, in *tInstance, limit time.Duration) (*tTab, func() []string) {
	t.Helper()
	tab := tChromiumTab(t, in)
	ctx, cancel := context.WithTimeout(tab.ctx, limit)
	t.Cleanup(cancel)
	tab.ctx = ctx
	var mu sync.Mutex
	var pages []string
	if err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*page.EventFrameNavigated); ok && e.Frame.ParentID == "" {
			mu.Lock()
			pages = append(pages, e.Frame.URL)
			mu.Unlock()
		}
	}); err != nil {
		t.Fatalf("listen to chromium: %v", err)
	}
	return tab, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), pages...)
	}
}

// signInAtProvider clicks "Sign in with corp" on the console's sign-in
// page and fills in the provider's login form as user; then waits for
// sel on the console page the sign-in ends at. A sign-in that ends
// elsewhere (a blocked redirect, the sign-in page again) fails the test
// with the page it ended at.
func (b *tTab) signInAtProvider(user, sel string) {
	b.t.Helper()
	b.step("sign in with corp", chromedp.Click(chromedp.CSS(`a[href^="/login/sso/corp"]`)),
		chromedp.WaitVisible(chromedp.CSS("#username")))
	b.step("fill in the provider's form as "+user, chromedp.SendKeys(chromedp.CSS("#username"), user),
		chromedp.SendKeys(chromedp.CSS("#password"), tSSOPassword))
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#submit")), chromedp.WaitVisible(chromedp.CSS(sel))); err != nil {
		loc, _ := chromedp.Run(b.ctx, chromedp.Location())
		body, _ := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS("body")))
		b.t.Fatalf("chromium: signed in at the provider as %s, no %s: %v; the page is %s: %q (problems so far: %v)",
			user, sel, err, loc, body, b.problems())
	}
}

// tPaths are the paths (and queries) of those of urls on origin, with the
// other sites' pages as their origin.
func tPaths(t *testing.T, origin string, urls []string) []string {
	t.Helper()
	var out []string
	for _, s := range urls {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatalf("a page's URL %q: %v", s, err)
		}
		switch {
		case u.Scheme+"://"+u.Host != origin:
			out = append(out, u.Scheme+"://"+u.Host)
		case u.RawQuery != "":
			out = append(out, u.Path+"?"+u.RawQuery)
		default:
			out = append(out, u.Path)
		}
	}
	return out
}

// TestConsoleSSOInChromium signs in to the console through the in-process
// OpenID provider in headless Chromium, as a person does. Alice (group
// pki-admins) opens a certificate's address, is sent to the sign-in page,
// presses "Sign in with corp", fills in the provider's login form and is
// taken back through the callback's "continue" page to the certificate
// she asked for, revokes it with its confirmation (and OCSP then says
// revoked), signs out, and follows the signed-out page's "sign out of
// corp" to the provider and back to the console. Bob (pki-viewers), in a
// browser of his own, signs in from /login, lands on the overview, sees
// the inventory and a certificate without any revocation form. No page of
// the console or the provider may log an error (a CSP violation, a
// blocked form or redirect, a failed load). With CERTWRIGHT_SCREENSHOTS=DIR
// it writes the sign-in page with the provider's button there.
func TestConsoleSSOInChromium(t *testing.T) {
	t.Parallel()
	s := tNewSSO(t, "")
	in := s.in
	key := tECKey(t, elliptic.P256())
	revoked := in.sign(tCSR(t, key, "sso-revoke.internal.test"))
	kept := in.sign(tCSR(t, key, "sso-keep.internal.test"))
	base, idp := in.l.HTTPSURL, s.idp.Issuer()

	alice, alicePages := tSSOTab(t, in, 25*time.Second)
	alice.step("open a certificate's address", chromedp.Navigate(base+"/certificates/"+revoked.Serial),
		chromedp.WaitVisible(chromedp.CSS(`a[href^="/login/sso/corp"]`)))
	alice.shot("sign-in-sso")
	if b := alice.text(`a[href^="/login/sso/corp"]`); b != "Sign in with corp" {
		t.Errorf("the provider's button says %q", b)
	}
	alice.signInAtProvider("alice", "form.revoke")
	if who := alice.text(".who"); !strings.Contains(who, "alice") {
		t.Errorf("signed in through corp, the console names %q", who)
	}
	alice.step("revoke the certificate", chromedp.SetValue(chromedp.CSS(`select[name="reason"]`), "key_compromise"),
		chromedp.Click(chromedp.CSS(`input[name="confirm"]`)), chromedp.Click(chromedp.CSS(`form.revoke button`)),
		chromedp.WaitVisible(chromedp.CSS("#rev")))
	if st := tOCSPStatus(t, in, tPEMCert(t, revoked.CertificatePEM), tPEMCert(t, revoked.ChainPEM)); st != ocsp.Revoked {
		t.Errorf("OCSP after alice revoked in the browser: %d, want revoked", st)
	}
	alice.step("sign out", chromedp.Click(chromedp.CSS("form.signout button")), chromedp.WaitVisible(chromedp.CSS("#token")))
	signedOut := alice.text("main")
	alice.step("sign out of corp", chromedp.Click(chromedp.CSS(`a[href^="`+idp+`/"]`)),
		chromedp.WaitNotPresent(chromedp.CSS(`a[href^="`+idp+`/"]`)), chromedp.WaitVisible(chromedp.CSS(`a[href^="/login/sso/corp"]`)))
	back, err := chromedp.Run(alice.ctx, chromedp.Location())
	if err != nil {
		t.Fatalf("chromium: location: %v", err)
	}
	if back != base+"/login?ended=required" {
		t.Errorf("signed out of corp, the browser is at %s, want the console's sign-in page", back)
	}
	if !strings.Contains(signedOut, "You signed out.") || !strings.Contains(signedOut, "sign out of corp") {
		t.Errorf("after signing out, the page says %q", signedOut)
	}
	// The sign-in: the console's sign-in page, the provider's login form,
	// the callback's page (a page, so that the Strict session cookie goes
	// with the next request), the certificate asked for. Then the sign-out
	// page, and the console again after the provider's end-session
	// endpoint (a redirect, not a page) sent the browser back.
	want := []string{
		"/login?ended=required&next=%2Fcertificates%2F" + revoked.Serial, idp, "/login/sso/callback", "/certificates/" + revoked.Serial,
		"/login?ended=signed_out", "/login?ended=required",
	}
	if got := tPaths(t, base, alicePages()); !tSubsequence(got, want) {
		t.Errorf("alice's pages %q\ndo not pass through %q in order", got, want)
	}
	if p := alice.problems(); len(p) > 0 {
		t.Errorf("alice's browser reported problems: %v", p)
	}

	bob, bobPages := tSSOTab(t, in, 25*time.Second)
	bob.step("open the sign-in page", chromedp.Navigate(base+"/login"), chromedp.WaitVisible(chromedp.CSS(`a[href^="/login/sso/corp"]`)))
	bob.signInAtProvider("bob", "ul.tiles")
	bob.step("open the inventory", chromedp.Click(chromedp.CSS(`nav a[href="/certificates"]`)), chromedp.WaitVisible(chromedp.CSS("table")))
	inventory := bob.text("table")
	bob.step("open a certificate", chromedp.Click(chromedp.CSS(`table a[href="/certificates/`+kept.Serial+`"]`)),
		chromedp.WaitVisible(chromedp.CSS("#chain")))
	heading := bob.text("h1")
	forms, err := chromedp.Run(bob.ctx, chromedp.Evaluate[int](`document.querySelectorAll('form.revoke, form[action$="/revoke"]').length`))
	if err != nil {
		t.Fatalf("chromium: count revoke forms: %v", err)
	}
	if !strings.Contains(inventory, "sso-keep.internal.test") || !strings.Contains(inventory, "sso-revoke.internal.test") {
		t.Errorf("bob's inventory: %q", inventory)
	}
	if !strings.Contains(heading, "sso-keep.internal.test") || forms != 0 {
		t.Errorf("bob (pki-viewers) on %q is offered %d revoke forms, want none", heading, forms)
	}
	want = []string{"/login", idp, "/login/sso/callback", "/", "/certificates", "/certificates/" + kept.Serial}
	if got := tPaths(t, base, bobPages()); !tSubsequence(got, want) {
		t.Errorf("bob's pages %q\ndo not pass through %q in order", got, want)
	}
	if p := bob.problems(); len(p) > 0 {
		t.Errorf("bob's browser reported problems: %v", p)
	}
}

// tSubsequence reports whether want appears in got in order, other
// elements between them allowed; a wanted page without a query matches
// the page with any query.
func tSubsequence(got, want []string) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && (g == want[i] || !strings.Contains(want[i], "?") && strings.HasPrefix(g, want[i]+"?")) {
			i++
		}
	}
	return i == len(want)
}
