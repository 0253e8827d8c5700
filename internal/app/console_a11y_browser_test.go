package app

import (
	"crypto/elliptic"
	"fmt"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/certwright/certwright/internal/web/apitypes"
)

// tA11yJS is evaluated in the page (through DevTools, which the console's
// CSP does not govern) before each check: a11y.* are the page-side halves
// of the checks in TestConsoleAccessibleInChromium.
const tA11yJS = `
var a11y = window.a11y || (window.a11y = (() => {
  const desc = e => {
    if (!e || e === document.body) return 'body';
    let s = e.tagName.toLowerCase();
    if (e.id) s += '#' + e.id;
    const c = e.getAttribute('class'); if (c) s += '.' + c.trim().split(/\s+/).join('.');
    for (const a of ['name', 'href', 'action']) { const v = e.getAttribute(a); if (v) { s += '[' + a + '="' + v + '"]'; break; } }
    const t = (e.textContent || '').trim().replace(/\s+/g, ' ').slice(0, 40);
    return t ? s + ' "' + t + '"' : s;
  };
  // focusable lists the elements Tab should reach, in DOM order: the
  // controls, and a .scroll box that scrolls sideways with no control in
  // it (the browser makes it focusable, so the keyboard can scroll it).
  const controls = 'a[href], button, input:not([type=hidden]), select, textarea, summary, [tabindex]:not([tabindex="-1"])';
  const shown = e => e.getClientRects().length > 0 && e.checkVisibility({visibilityProperty: true});
  const focusable = () => [...document.querySelectorAll(controls + ', .scroll')]
    .filter(e => shown(e) && (e.matches('.scroll') ? e.scrollWidth > e.clientWidth && ![...e.querySelectorAll(controls)].some(shown) : !e.disabled));
  const parse = c => {
    const m = /^rgba?\(([\d.]+),? ([\d.]+),? ([\d.]+)(?:,? \/? ?([\d.]+))?\)$/.exec(c.trim());
    if (!m) return null;
    return [+m[1], +m[2], +m[3], m[4] === undefined ? 1 : +m[4]];
  };
  const over = (top, bottom) => [0, 1, 2].map(i => top[i] * top[3] + bottom[i] * (1 - top[3])).concat(1);
  const lum = c => {
    const l = c.slice(0, 3).map(v => { v /= 255; return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
    return 0.2126 * l[0] + 0.7152 * l[1] + 0.0722 * l[2];
  };
  const ratio = (a, b) => { const x = lum(a), y = lum(b); return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05); };
  const dark = () => matchMedia('(prefers-color-scheme: dark)').matches;
  // The background under e: its own and its ancestors' colours, the first
  // opaque one at the bottom, composed up; the canvas when none is.
  const background = e => {
    const layers = [];
    for (let n = e; n && n.nodeType === 1; n = n.parentElement) {
      const c = parse(getComputedStyle(n).backgroundColor);
      if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
    }
    let bg = layers.length && layers[layers.length - 1][3] >= 1 ? layers.pop() : (dark() ? [18, 18, 18, 1] : [255, 255, 255, 1]);
    while (layers.length) bg = over(layers.pop(), bg);
    return bg;
  };
  const ownText = e => [...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim() !== '');
  const visible = e => e.getClientRects().length > 0 && e.checkVisibility({opacityProperty: true, visibilityProperty: true});
  const large = s => { const px = parseFloat(s.fontSize), w = parseInt(s.fontWeight, 10); return px >= 24 || (px >= 18.66 && w >= 700); };
  return {
    // list remembers the page's focusable elements in DOM order.
    list() { window.a11yList = focusable(); return window.a11yList.map(desc); },
    // top puts the focus, and the browser's sequential-navigation
    // starting point, at the start of the page (the body), so the next
    // Tab goes to the first focusable element without leaving the page.
    top() {
      const b = document.body;
      b.tabIndex = -1; b.focus(); b.removeAttribute('tabindex');
      return this.active();
    },
    // active says where the focus is: its index in list (-1: none of
    // them), what it is, and whether it shows a focus indicator.
    active() {
      const e = document.activeElement, s = e ? getComputedStyle(e) : null;
      const outline = !!s && s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0;
      const ring = outline || (!!s && !!s.boxShadow && s.boxShadow !== 'none');
      // An outline must stand out from what is around it (3:1).
      const oc = outline ? parse(s.outlineColor) : null;
      const ringContrast = oc && e.parentElement ? ratio(over(oc, background(e.parentElement)), background(e.parentElement)) : 21;
      const r = e ? e.getBoundingClientRect() : {left: 0, right: 0};
      return {index: window.a11yList.indexOf(e), what: desc(e), ring, ringContrast, inMain: !!e && !!e.closest('main'),
        onScreen: r.right > 0 && r.left < document.documentElement.clientWidth};
    },
    // contrast lists the text (and chart marks) whose contrast against
    // their background is below WCAG 2.1 AA.
    contrast() {
      document.querySelectorAll('details').forEach(d => { d.open = true; });
      const bad = [];
      const check = (e, color, bg, need, what) => {
        if (!color || !bg) { bad.push(desc(e) + ': unparsed colour ' + what); return; }
        const r = ratio(over(color, bg), bg);
        if (r < need) bad.push(desc(e) + ' ' + what + ': ' + r.toFixed(2) + ':1 < ' + need + ':1');
      };
      for (const e of document.body.querySelectorAll('*')) {
        if (!visible(e)) continue;
        const s = getComputedStyle(e);
        if (e instanceof SVGElement) {
          if (e.tagName === 'text') check(e, parse(s.fill), background(e), 4.5, 'fill ' + s.fill);
          else if (e.tagName === 'rect' && /\bs\d\b/.test(e.getAttribute('class') || '')) check(e, parse(s.fill), background(e.parentElement), 3, 'mark ' + s.fill);
          continue;
        }
        if (e.classList.contains('swatch')) { check(e, parse(s.backgroundColor), background(e.parentElement), 3, 'swatch'); continue; }
        const bg = background(e);
        if (ownText(e)) check(e, parse(s.color), bg, large(s) ? 3 : 4.5, 'text ' + s.color + ' on rgb(' + bg.slice(0, 3) + ')');
        if (e.matches('input:not([type=checkbox]):not([type=radio]), select, textarea')) {
          check(e, parse(s.color), bg, 4.5, 'value ' + s.color);
          if (e.placeholder) { const p = getComputedStyle(e, '::placeholder'); check(e, parse(p.color), bg, 4.5, 'placeholder ' + p.color); }
        }
      }
      return bad;
    },
    bodyLuminance() { return lum(background(document.body)); },
    // overflow lists what makes the page wider than the viewport, tables
    // outside a scrolling .scroll, and header controls off screen or covered.
    overflow() {
      window.scrollTo(0, 0);
      const de = document.documentElement, cw = de.clientWidth, bad = [];
      if (de.scrollWidth > cw) bad.push('the page is ' + de.scrollWidth + 'px wide in a ' + cw + 'px viewport');
      for (const e of document.body.querySelectorAll('*')) {
        if (bad.length > 8) break;
        if (e.closest('.scroll, .skip') || !visible(e)) continue;
        const r = e.getBoundingClientRect();
        if (r.right > cw + 0.5) bad.push(desc(e) + ' reaches ' + Math.round(r.right) + 'px');
      }
      for (const t of document.querySelectorAll('table')) {
        const s = t.closest('.scroll');
        if (!s || !['auto', 'scroll'].includes(getComputedStyle(s).overflowX)) bad.push(desc(t) + ' is not in a scrolling .scroll');
      }
      for (const a of document.querySelectorAll('header a:not(.skip), header button')) {
        const r = a.getBoundingClientRect();
        if (r.left < 0 || r.right > cw) { bad.push(desc(a) + ' is off screen'); continue; }
        const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
        if (!a.contains(hit)) bad.push(desc(a) + ' is covered by ' + desc(hit));
        if (r.height < 24 || r.width < 24) bad.push(desc(a) + ' is a ' + Math.round(r.width) + 'x' + Math.round(r.height) + ' target');
      }
      return bad;
    },
    // times lists every time element; stray lists relative times shown
    // outside one (no exact time on hover: an alert's .message is the text
    // as it was sent), and long numbers without thousands separators.
    times() {
      return [...document.querySelectorAll('time')].map(t => ({text: t.textContent.trim(), title: t.title, datetime: t.getAttribute('datetime') || ''}));
    },
    stray() {
      const bad = [], w = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
      const rel = /\b(\d+ (minute|hour|day)s? ago|in (\d+ (minute|hour|day)s?|under a minute))\b/;
      const big = /(^|[^\w,.:\-\/#])\d{5,}(?![\w,.:\-])/;
      for (let n; (n = w.nextNode());) {
        const p = n.parentElement;
        if (!p || p.closest('time, script, style, .mono, code, .message')) continue;
        if (rel.test(n.textContent)) bad.push('relative time outside a time element: ' + desc(p));
        if (big.test(n.textContent)) bad.push('number without thousands separators: ' + desc(p));
      }
      return bad;
    },
  };
})());
`

// tA11yTab drives one console view through the accessibility checks.
type tA11yTab struct {
	*tTab
	view string
}

// tEval evaluates expr in b's page after tA11yJS and decodes its result.
func tEval[T any](b *tA11yTab, what, expr string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](tA11yJS+expr))
	if err != nil {
		b.t.Fatalf("%s: %s: %v (problems so far: %v)", b.view, what, err, b.problems())
	}
	return v
}

// tFocus is where the focus is, as a11y.active() says it.
type tFocus struct {
	Index int    `json:"index"`
	What  string `json:"what"`
	Ring  bool   `json:"ring"`
	// RingContrast is the outline's contrast against the background.
	RingContrast float64 `json:"ringContrast"`
	InMain       bool    `json:"inMain"`
	OnScreen     bool    `json:"onScreen"`
}

// press types key (with mods) where the focus is and says where it is then.
func (b *tA11yTab) press(key string, mods ...chromedp.Modifier) tFocus {
	b.t.Helper()
	b.step(b.view+": press a key", chromedp.KeyEvent(key, chromedp.KeyModifiers(mods...)))
	return tEval[tFocus](b, "focus", "a11y.active()")
}

// keyboard walks the view with Tab from the page start once round:
// every focusable element in DOM order, each with a focus indicator;
// then back one with Shift+Tab; then, from the page start again, one
// Tab must reach the skip link, which must show on screen and move the
// focus into main. The walk never Tabs out of the page: where the focus
// goes after the browser's own controls is the browser's business (in
// CI, Chromium once came back in at the second element).
func (b *tA11yTab) keyboard() {
	b.t.Helper()
	t := b.t
	list := tEval[[]string](b, "focusable elements", "a11y.list()")
	n := len(list)
	if n == 0 || !strings.HasPrefix(list[0], `a.skip[href="#main"]`) {
		t.Errorf("%s: the first focusable element is not the skip link: %.1q", b.view, list)
		return
	}
	cur := tEval[tFocus](b, "focus", "a11y.top()")
	if cur.Index != -1 {
		t.Errorf("%s: the focus did not go to the page start: it is on %s", b.view, cur.What)
		return
	}
	for moved, repeats := 0, 0; moved < n; {
		f := b.press(kb.Tab)
		want := cur.Index + 1
		switch {
		case f.Index == cur.Index && f.Index >= 0 && repeats < 4:
			repeats++ // a composite control (a date field's parts)
			continue
		case f.Index != want:
			t.Errorf("%s: Tab from %s went to %s, want %s", b.view, cur.What, f.What, list[want])
			return
		}
		if !f.Ring {
			t.Errorf("%s: %s shows no focus indicator", b.view, f.What)
		} else if f.RingContrast < 3 {
			t.Errorf("%s: the focus outline of %s has a contrast of %.2f:1, below 3:1", b.view, f.What, f.RingContrast)
		}
		cur, repeats, moved = f, 0, moved+1
	}
	if n > 2 {
		back := b.press(kb.Tab, chromedp.ModifierShift)
		if want := cur.Index - 1; back.Index != want && back.Index != cur.Index {
			t.Errorf("%s: Shift+Tab from %s went to %s, want %s", b.view, cur.What, back.What, list[want])
		}
	}
	tEval[tFocus](b, "focus", "a11y.top()")
	if cur = b.press(kb.Tab); cur.Index != 0 {
		t.Errorf("%s: Tab from the page start went to %s, not the skip link", b.view, cur.What)
		return
	}
	if !cur.OnScreen {
		t.Errorf("%s: the focused skip link is not on screen", b.view)
	}
	b.step(b.view+": follow the skip link", chromedp.KeyEvent(kb.Enter))
	if _, err := chromedp.Run(b.ctx, chromedp.Poll[bool](`location.hash === '#main'`)); err != nil {
		t.Errorf("%s: Enter on the skip link did not go to #main: %v", b.view, err)
	}
	if f := b.press(kb.Tab); !f.InMain {
		t.Errorf("%s: after the skip link, Tab went to %s, outside main", b.view, f.What)
	}
}

// metrics sets the viewport: CSS width w at scale, mobile or not.
func (b *tA11yTab) metrics(w, h int64, scale float64, mobile bool) {
	b.t.Helper()
	if _, err := chromedp.Call(b.ctx, emulation.SetDeviceMetricsOverride,
		emulation.SetDeviceMetricsOverrideParams{Width: w, Height: h, DeviceScaleFactor: scale, Mobile: mobile}); err != nil {
		b.t.Fatalf("%s: set the viewport to %dpx: %v", b.view, w, err)
	}
}

// scheme emulates the system's colour scheme, "light" or "dark".
func (b *tA11yTab) scheme(s string) {
	b.t.Helper()
	if _, err := chromedp.Call(b.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: s}}}); err != nil {
		b.t.Fatalf("%s: emulate prefers-color-scheme %s: %v", b.view, s, err)
	}
}

var (
	tExactTime = regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$`)
	// tMachineTime is a valid HTML global date and time in UTC.
	tMachineTime = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)
	tHumanTime   = regexp.MustCompile(`^(now|due|in under a minute|in \d+ (minute|hour|day)s?|\d+ (minute|hour|day)s? ago|\d{4}-\d\d-\d\d( \((now|in \d+ (minute|hour|day)s?|\d+ (minute|hour|day)s? ago)\))?)$`)
)

// static checks the view as it stands: its times, its contrast in light
// and dark mode (and that the page itself is light or dark), and no
// horizontal overflow at phone width and at 200 % zoom.
func (b *tA11yTab) static() {
	b.t.Helper()
	t := b.t
	type tTime struct{ Text, Title, Datetime string }
	for _, tm := range tEval[[]tTime](b, "times", "a11y.times()") {
		if !tExactTime.MatchString(tm.Title) || !tHumanTime.MatchString(tm.Text) || !tMachineTime.MatchString(tm.Datetime) {
			t.Errorf("%s: <time datetime=%q title=%q>%s</time>: want a relative or day text, the exact time in title, an RFC 3339 UTC datetime", b.view, tm.Datetime, tm.Title, tm.Text)
		}
	}
	for _, p := range tEval[[]string](b, "stray times and numbers", "a11y.stray()") {
		t.Errorf("%s: %s", b.view, p)
	}
	for _, mode := range []string{"light", "dark"} {
		b.scheme(mode)
		l := tEval[float64](b, "body background", "a11y.bodyLuminance()")
		if (mode == "dark") != (l < 0.05) || (mode == "light" && l < 0.8) {
			t.Errorf("%s: with prefers-color-scheme %s the page background's luminance is %.3f", b.view, mode, l)
		}
		for i, p := range tEval[[]string](b, "contrast", "a11y.contrast()") {
			if i == 8 {
				t.Errorf("%s (%s): and more", b.view, mode)
				break
			}
			t.Errorf("%s (%s): contrast too low: %s", b.view, mode, p)
		}
	}
	b.scheme("light")
	for _, vp := range []struct {
		name   string
		w, h   int64
		scale  float64
		mobile bool
	}{{"a 390px phone", 390, 844, 3, true}, {"200% zoom of 1280px", 640, 450, 2, false}} {
		b.metrics(vp.w, vp.h, vp.scale, vp.mobile)
		for i, p := range tEval[[]string](b, "overflow", "a11y.overflow()") {
			if i == 8 {
				break
			}
			t.Errorf("%s at %s: %s", b.view, vp.name, p)
		}
	}
	b.metrics(1280, 900, 1, false)
}

// TestConsoleAccessibleInChromium holds every console view, with seeded
// data, to the bar in a real browser: Tab reaches every control
// in DOM order from a first "skip to content" link, each with a visible
// focus indicator and no trap, and a certificate is revoked with the
// keyboard alone; no horizontal scrolling at a 390px phone width or at
// 200 % zoom (wide tables scroll in their own box, the nav stays usable);
// text, chart labels and marks meet WCAG 2.1 AA contrast in light and in
// dark mode, which follows the system; every time shows a relative or
// day text with the exact time on hover, and counts carry thousands
// separators.
func TestConsoleAccessibleInChromium(t *testing.T) {
	t.Parallel()
	in, _, _ := tAlertsInstance(t, "")
	key := tECKey(t, elliptic.P256())
	var certs []apitypes.IssuedCertificate
	for _, n := range []string{"app-1.example.internal", "app-2.example.internal", "db.example.internal", "gone.example.internal"} {
		certs = append(certs, in.sign(tCSR(t, key, n)))
	}
	in.must(http.StatusOK, "POST", "/api/v1/certificates/"+certs[3].Serial+"/revoke", apitypes.RevokeRequest{Reason: "superseded"}, nil)
	tHeldRequest(t, in)
	in.must(http.StatusCreated, "POST", "/api/v1/principals",
		apitypes.CreatePrincipalRequest{Name: "ida", Kind: "human", Role: "approver", Token: true}, nil)
	in.must(http.StatusCreated, "POST", "/api/v1/acme/provisioners", apitypes.CreateProvisionerRequest{
		Name: "shop", CA: "issuing", Profile: "web_server", Challenges: []string{"http-01", "tls-alpn-01"},
	}, nil)
	tESTFleetDevice(t, in)
	if _, err := exec.LookPath("openssl"); err == nil { // a non-compliant certificate for the compliance view
		in.tImport(http.StatusCreated, apitypes.ImportRequest{Files: []apitypes.ImportFile{
			{Name: "weak.pem", PEM: tLegacyPEM(t, "weak.example.com", "sha256", 1024, 30)}}})
	}

	b := &tA11yTab{tTab: tChromiumTab(t, in)}
	base := in.l.HTTPSURL
	open := func(view, path, wait string) {
		t.Helper()
		b.view = view
		b.step("open "+view, chromedp.Navigate(base+path), chromedp.WaitVisible(chromedp.CSS(wait)))
	}
	open("login", "/login", "#token")
	b.keyboard()
	b.metrics(390, 844, 3, true)
	b.keyboard()
	b.static()
	b.step("sign in", chromedp.Navigate(base+"/login"), chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), in.token), chromedp.Submit(chromedp.CSS("form.login")),
		chromedp.WaitVisible(chromedp.CSS("ul.tiles")))
	for _, v := range []struct{ view, path, wait string }{
		{"overview", "/", "ul.tiles"},
		{"certificates", "/certificates", "table"},
		{"certificate", "/certificates/" + certs[0].Serial, "form.revoke"},
		{"revoked certificate", "/certificates/" + certs[3].Serial, "#rev"},
		{"cas", "/cas", "table"},
		{"requests", "/requests", "main table"},
		{"alerts", "/alerts", "table.alerts"},
		{"acme-provisioners", "/acme-provisioners", "table"},
		{"acme-provisioner", "/acme-provisioners/shop", "#accounts"},
		{"est-provisioners", "/est-provisioners", "table"},
		{"est-provisioner", "/est-provisioners/fleet", "#secrets"},
		{"compliance", "/compliance", "#kpis"},
		{"audit", "/audit", "table"},
		{"access", "/access", "#principals"},
		{"principal", "/access/principals/ida", "#tokens"},
	} {
		open(v.view, v.path, v.wait)
		b.keyboard()
		b.metrics(390, 844, 3, true)
		b.keyboard()
		b.static()
	}

	// The revoke form with the keyboard alone: Tab to the reason, type to
	// choose it, Tab to the confirmation, Space, Tab to the button, Enter.
	open("certificate (revoking)", "/certificates/"+certs[1].Serial, "form.revoke")
	tEval[[]string](b, "focusable elements", "a11y.list()")
	until := func(sel string) {
		t.Helper()
		for i := 0; i < 200; i++ {
			b.press(kb.Tab)
			if tEval[bool](b, "focus", fmt.Sprintf(`document.activeElement.matches(%q)`, sel)) {
				return
			}
		}
		t.Fatalf("Tab never reached %s", sel)
	}
	until(`form.revoke select[name="reason"]`)
	b.press("key")
	if v := tEval[string](b, "reason", `document.activeElement.value`); v != "key_compromise" {
		t.Errorf("typing on the reason chose %q, want key_compromise", v)
	}
	until(`form.revoke input[name="confirm"]`)
	b.press(" ")
	until(`form.revoke button`)
	b.step("submit with Enter", chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.CSS("#rev")))
	if s := b.text("main"); !strings.Contains(s, "key_compromise") || !strings.Contains(s, "The certificate is revoked") {
		t.Errorf("after revoking with the keyboard, the page says %q", s)
	}
	if p := b.problems(); len(p) > 0 {
		t.Errorf("the browser reported problems: %v", p)
	}
}
