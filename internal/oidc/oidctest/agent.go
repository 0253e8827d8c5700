package oidctest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"

	"golang.org/x/net/html"
)

// This file is a user agent for the provider's pages: what a person does
// in a browser, done by a Go http.Client, for tests that need no Chromium.

// maxRedirects bounds the redirects Login follows.
const maxRedirects = 10

// maxPage bounds a page the agent reads.
const maxPage = 1 << 20

// NewBrowser returns an http.Client with a cookie jar that does not follow
// redirects by itself, as Login and ApproveDevice want it.
func NewBrowser() *http.Client {
	jar, _ := cookiejar.New(nil) // never fails with nil options
	return &http.Client{
		Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// Login signs in at the provider as a person would: it opens authURL,
// follows redirects on the provider to its login form, submits username
// and password, and follows the provider's redirects until the one that
// leaves the provider, which it returns without requesting it (the
// relying party's redirect_uri with code and state, or error). hc should
// come from NewBrowser.
func Login(ctx context.Context, hc *http.Client, authURL, username, password string) (*url.URL, error) {
	start, err := url.Parse(authURL)
	if err != nil {
		return nil, fmt.Errorf("oidctest: login: %w", err)
	}
	next, body, err := follow(ctx, hc, start, start.Host, nil)
	if err != nil || next != nil {
		return next, err // an error redirect before any login form
	}
	form, err := findForm(body, start)
	if err != nil {
		return nil, err
	}
	form.values.Set("username", username)
	form.values.Set("password", password)
	next, body, err = follow(ctx, hc, form.action, start.Host, form.values)
	if err != nil {
		return nil, err
	}
	if next == nil {
		return nil, fmt.Errorf("oidctest: login refused: %s", pageError(body))
	}
	return next, nil
}

// ApproveDevice completes the device grant's user-code page as a person
// would: it opens verificationURIComplete (or verification_uri, then
// userCode is typed in), signs in and submits.
func ApproveDevice(ctx context.Context, hc *http.Client, verificationURI, userCode, username, password string) error {
	u, err := url.Parse(verificationURI)
	if err != nil {
		return fmt.Errorf("oidctest: device: %w", err)
	}
	_, body, err := follow(ctx, hc, u, u.Host, nil)
	if err != nil {
		return err
	}
	form, err := findForm(body, u)
	if err != nil {
		return err
	}
	if form.values.Get("user_code") == "" {
		form.values.Set("user_code", userCode)
	}
	form.values.Set("username", username)
	form.values.Set("password", password)
	_, body, err = follow(ctx, hc, form.action, u.Host, form.values)
	if err != nil {
		return err
	}
	if msg := pageError(body); msg != "" {
		return fmt.Errorf("oidctest: device approval refused: %s", msg)
	}
	return nil
}

// follow requests u (POSTing post when non-nil) and follows redirects
// while they stay on host. It returns the first redirect that leaves host,
// or else the final page.
func follow(ctx context.Context, hc *http.Client, u *url.URL, host string, post url.Values) (*url.URL, []byte, error) {
	for range maxRedirects {
		var req *http.Request
		var err error
		if post != nil {
			req, err = http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(post.Encode()))
			if req != nil {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
		} else {
			req, err = http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("oidctest: %w", err)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return nil, nil, fmt.Errorf("oidctest: %w", err)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxPage))
		resp.Body.Close()
		if err != nil {
			return nil, nil, fmt.Errorf("oidctest: %w", err)
		}
		loc := resp.Header.Get("Location")
		if resp.StatusCode < 300 || resp.StatusCode > 399 || loc == "" {
			if resp.StatusCode >= 500 {
				return nil, nil, fmt.Errorf("oidctest: %s: %s", resp.Status, strings.TrimSpace(string(body)))
			}
			return nil, body, nil
		}
		next, err := u.Parse(loc)
		if err != nil {
			return nil, nil, fmt.Errorf("oidctest: bad redirect %q: %w", loc, err)
		}
		if next.Host != host {
			return next, nil, nil
		}
		u, post = next, nil
	}
	return nil, nil, errors.New("oidctest: too many redirects")
}

type form struct {
	action *url.URL
	values url.Values
}

// findForm returns the first form of page, with its hidden inputs' values.
func findForm(page []byte, base *url.URL) (*form, error) {
	doc, err := html.Parse(strings.NewReader(string(page)))
	if err != nil {
		return nil, fmt.Errorf("oidctest: parse page: %w", err)
	}
	var f *form
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			switch {
			case n.Data == "form" && f == nil:
				action, _ := base.Parse(attr(n, "action"))
				f = &form{action: action, values: url.Values{}}
			case n.Data == "input" && f != nil && attr(n, "name") != "":
				f.values.Set(attr(n, "name"), attr(n, "value"))
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	if f == nil || f.action == nil {
		return nil, fmt.Errorf("oidctest: no form on the page: %s", pageError(page))
	}
	return f, nil
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// pageError returns the text of the page's #error element, or "".
func pageError(page []byte) string {
	doc, err := html.Parse(strings.NewReader(string(page)))
	if err != nil {
		return ""
	}
	var out string
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && attr(n, "id") == "error" && n.FirstChild != nil {
			out = n.FirstChild.Data
		}
		for c := n.FirstChild; c != nil && out == ""; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return out
}
