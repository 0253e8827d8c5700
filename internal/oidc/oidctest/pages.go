package oidctest

import (
	"context"
	"html/template"
	"log/slog"
	"net/http"
)

// pages serves the provider's login, device and signed-out pages: plain
// HTML forms with stable element IDs (#username, #password, #user_code,
// #submit) for a headless browser, and nothing a Go client must run.
type pages struct {
	st       *store
	callback func(ctx context.Context, authRequestID string) string
}

var tmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}} — Certwright test provider</title></head>
<body>
<h1>{{.Title}}</h1>
{{if .Error}}<p id="error" role="alert">{{.Error}}</p>{{end}}
{{if .Message}}<p id="message">{{.Message}}</p>{{end}}
{{if .Form}}<form method="post" action="{{.Action}}">
{{if .AuthRequestID}}<input type="hidden" name="authRequestID" value="{{.AuthRequestID}}">{{end}}
{{if .Device}}<label>Code <input id="user_code" name="user_code" value="{{.UserCode}}" autocomplete="off" required></label><br>{{end}}
<label>Username <input id="username" name="username" autocomplete="username" required></label><br>
<label>Password <input id="password" name="password" type="password" autocomplete="current-password" required></label><br>
<button id="submit" type="submit">Sign in</button>
</form>{{end}}
<p><small>Certwright test identity provider: for tests and trials only.</small></p>
</body></html>
`))

type pageData struct {
	Title, Error, Message, Action, AuthRequestID, UserCode string
	Form, Device                                           bool
}

// render writes the page d. formTarget, when not empty, is an origin the
// page's form may lead to besides the provider's own: a browser holds the
// redirects that follow a form's POST to the form-action policy as well,
// so a login form must be allowed to end at its client.
func render(w http.ResponseWriter, status int, d pageData, formTarget string) {
	formAction := "form-action 'self'"
	if formTarget != "" {
		formAction += " " + formTarget
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; "+formAction)
	w.WriteHeader(status)
	if err := tmpl.Execute(w, d); err != nil {
		slog.Debug("oidctest: render page", "error", err)
	}
}

// login shows the login form of a sign-in (GET) and checks it (POST),
// then sends the browser back to the op's callback, which redirects to the
// client with a code.
func (p *pages) login(w http.ResponseWriter, r *http.Request) {
	d := pageData{Title: "Sign in", Form: true, Action: LoginPath}
	switch r.Method {
	case http.MethodGet:
		d.AuthRequestID = r.URL.Query().Get("authRequestID")
		render(w, http.StatusOK, d, p.st.redirectOrigin(d.AuthRequestID))
	case http.MethodPost:
		d.AuthRequestID = r.PostFormValue("authRequestID")
		u, err := p.st.checkPassword(r.PostFormValue("username"), r.PostFormValue("password"))
		if err == nil {
			err = p.st.finishLogin(d.AuthRequestID, u)
		}
		if err != nil {
			d.Error = err.Error()
			render(w, http.StatusUnauthorized, d, p.st.redirectOrigin(d.AuthRequestID))
			return
		}
		http.Redirect(w, r, p.callback(r.Context(), d.AuthRequestID), http.StatusFound)
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// device shows the device grant's user-code form (GET, prefilled from
// ?user_code= of verification_uri_complete) and approves the device as the
// user who signs in (POST).
func (p *pages) device(w http.ResponseWriter, r *http.Request) {
	d := pageData{Title: "Sign in a device", Form: true, Device: true, Action: DevicePath}
	switch r.Method {
	case http.MethodGet:
		d.UserCode = r.URL.Query().Get("user_code")
		render(w, http.StatusOK, d, "")
	case http.MethodPost:
		d.UserCode = r.PostFormValue("user_code")
		u, err := p.st.checkPassword(r.PostFormValue("username"), r.PostFormValue("password"))
		if err == nil {
			err = p.st.approveDevice(d.UserCode, u)
		}
		if err != nil {
			d.Error = err.Error()
			render(w, http.StatusUnauthorized, d, "")
			return
		}
		render(w, http.StatusOK, pageData{Title: "Device signed in", Message: "The device is signed in as " + u.Username + ". You can close this tab."}, "")
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

func (p *pages) loggedOut(w http.ResponseWriter, _ *http.Request) {
	render(w, http.StatusOK, pageData{Title: "Signed out", Message: "You are signed out of the test provider."}, "")
}
