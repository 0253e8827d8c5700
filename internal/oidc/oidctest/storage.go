package oidctest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// maxPending bounds the auth requests, codes, access tokens and device
// authorizations kept in memory: the provider may run for a while as
// certwright-testidp.
const maxPending = 10000

// pendingLifetime is how long an unfinished sign-in or an access token lives.
const pendingLifetime = 10 * time.Minute

var errNotFound = errors.New("oidctest: not found")

// store is the provider's in-memory op.Storage: users, clients, sign-ins
// in progress, access tokens and the one current signing key.
type store struct {
	mu       sync.Mutex
	users    map[string]*User // by username
	subjects map[string]*User // by subject
	clients  map[string]*client
	requests map[string]*authRequest // by ID
	codes    map[string]string       // code -> request ID
	tokens   map[string]*accessToken // by ID
	devices  map[string]*device      // device code -> authorization
	userCode map[string]string       // user code -> device code
	key      *signingKey
	lifetime time.Duration
}

var (
	_ op.Storage                    = (*store)(nil)
	_ op.CanSetUserinfoFromRequest  = (*store)(nil)
	_ op.DeviceAuthorizationStorage = (*store)(nil)
)

type signingKey struct {
	id  string
	key *rsa.PrivateKey
}

func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k *signingKey) Key() any                                    { return k.key }
func (k *signingKey) ID() string                                  { return k.id }

type publicKey struct{ *signingKey }

func (k publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return &k.key.PublicKey }

func newSigningKey() (*signingKey, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("oidctest: signing key: %w", err)
	}
	return &signingKey{id: randomID(), key: k}, nil
}

func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
}

type authRequest struct {
	id        string
	created   time.Time
	clientID  string
	redirect  string
	state     string
	nonce     string
	scopes    []string
	respType  oidc.ResponseType
	respMode  oidc.ResponseMode
	challenge *oidc.CodeChallenge
	subject   string
	authTime  time.Time
	done      bool
}

func (a *authRequest) GetID() string                         { return a.id }
func (a *authRequest) GetACR() string                        { return "" }
func (a *authRequest) GetAMR() []string                      { return amr(a.done) }
func (a *authRequest) GetAudience() []string                 { return []string{a.clientID} }
func (a *authRequest) GetAuthTime() time.Time                { return a.authTime }
func (a *authRequest) GetClientID() string                   { return a.clientID }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge { return a.challenge }
func (a *authRequest) GetNonce() string                      { return a.nonce }
func (a *authRequest) GetRedirectURI() string                { return a.redirect }
func (a *authRequest) GetResponseType() oidc.ResponseType    { return a.respType }
func (a *authRequest) GetResponseMode() oidc.ResponseMode    { return a.respMode }
func (a *authRequest) GetScopes() []string                   { return a.scopes }
func (a *authRequest) GetState() string                      { return a.state }
func (a *authRequest) GetSubject() string                    { return a.subject }
func (a *authRequest) Done() bool                            { return a.done }

func amr(done bool) []string {
	if done {
		return []string{"pwd"}
	}
	return nil
}

type accessToken struct {
	id       string
	clientID string
	subject  string
	scopes   []string
	expires  time.Time
}

type device struct {
	userCode string
	state    *op.DeviceAuthorizationState
}

func (s *store) checkPassword(username, password string) (*User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[username]
	// Compare even for an unknown user so that the answer takes as long.
	want := "\x00unknown user"
	if ok {
		want = u.Password
	}
	if subtle.ConstantTimeCompare([]byte(password), []byte(want)) != 1 || !ok {
		return nil, errors.New("wrong username or password")
	}
	return u, nil
}

// finishLogin marks the sign-in id as done by user.
func (s *store) finishLogin(id string, u *User) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.requests[id]
	if !ok {
		return errors.New("this sign-in has expired or is unknown: start again from the application")
	}
	r.subject, r.authTime, r.done = u.Subject, time.Now(), true
	return nil
}

// redirectOrigin is the origin (scheme://host:port) of the redirect URI of
// the sign-in id, "" when there is no such sign-in. The op accepted the
// URI as one registered for the client before the sign-in was stored; it
// is checked again here because it goes into a header.
func (s *store) redirectOrigin(id string) string {
	s.mu.Lock()
	r, ok := s.requests[id]
	s.mu.Unlock()
	if !ok {
		return ""
	}
	u, err := url.Parse(r.redirect)
	if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" ||
		strings.ContainsFunc(u.Host, func(c rune) bool { return !strings.ContainsRune(hostChars, c) }) {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// hostChars are the characters a host (a name, an IPv4 or bracketed IPv6
// address, and a port) may have in a CSP source expression.
const hostChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]"

// prune drops expired entries; called with s.mu held.
func (s *store) prune() {
	now := time.Now()
	for id, r := range s.requests {
		if now.Sub(r.created) > pendingLifetime {
			delete(s.requests, id)
		}
	}
	for code, id := range s.codes {
		if _, ok := s.requests[id]; !ok {
			delete(s.codes, code)
		}
	}
	for id, t := range s.tokens {
		if now.After(t.expires) {
			delete(s.tokens, id)
		}
	}
	for dc, d := range s.devices {
		if now.After(d.state.Expires.Add(pendingLifetime)) {
			delete(s.devices, dc)
			delete(s.userCode, d.userCode)
		}
	}
}

func (s *store) CreateAuthRequest(_ context.Context, req *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if slices.Contains(req.Prompt, oidc.PromptNone) {
		return nil, oidc.ErrLoginRequired() // this provider keeps no browser session
	}
	s.prune()
	if len(s.requests) >= maxPending {
		return nil, oidc.ErrServerError().WithDescription("too many sign-ins in progress")
	}
	r := &authRequest{
		id: randomID(), created: time.Now(), clientID: req.ClientID, redirect: req.RedirectURI,
		state: req.State, nonce: req.Nonce, scopes: req.Scopes, respType: req.ResponseType, respMode: req.ResponseMode,
	}
	if req.CodeChallenge != "" {
		r.challenge = &oidc.CodeChallenge{Challenge: req.CodeChallenge, Method: req.CodeChallengeMethod}
	}
	s.requests[r.id] = r
	return r, nil
}

func (s *store) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.requests[id]
	if !ok {
		return nil, errNotFound
	}
	return r, nil
}

func (s *store) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	s.mu.Lock()
	id, ok := s.codes[code]
	s.mu.Unlock()
	if !ok {
		return nil, errNotFound
	}
	return s.AuthRequestByID(ctx, id)
}

func (s *store) SaveAuthCode(_ context.Context, id, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.codes[code] = id
	return nil
}

// DeleteAuthRequest is called once a code was exchanged: the code is
// single-use.
func (s *store) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.requests, id)
	for code, rid := range s.codes {
		if rid == id {
			delete(s.codes, code)
		}
	}
	return nil
}

func (s *store) CreateAccessToken(_ context.Context, req op.TokenRequest) (string, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.tokens) >= maxPending {
		s.prune()
	}
	var clientID string
	if r, ok := req.(interface{ GetClientID() string }); ok {
		clientID = r.GetClientID()
	}
	t := &accessToken{id: randomID(), clientID: clientID, subject: req.GetSubject(), scopes: req.GetScopes(), expires: time.Now().Add(pendingLifetime)}
	s.tokens[t.id] = t
	return t.id, t.expires, nil
}

func (s *store) CreateAccessAndRefreshTokens(context.Context, op.TokenRequest, string) (string, string, time.Time, error) {
	return "", "", time.Time{}, oidc.ErrUnsupportedGrantType().WithDescription("this test provider issues no refresh tokens")
}

func (s *store) TokenRequestByRefreshToken(context.Context, string) (op.RefreshTokenRequest, error) {
	return nil, op.ErrInvalidRefreshToken
}

func (s *store) TerminateSession(_ context.Context, userID, clientID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, t := range s.tokens {
		if t.subject == userID && t.clientID == clientID {
			delete(s.tokens, id)
		}
	}
	return nil
}

func (s *store) RevokeToken(_ context.Context, tokenOrID, _, clientID string) *oidc.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.tokens[tokenOrID]; ok {
		if t.clientID != clientID {
			return oidc.ErrInvalidClient().WithDescription("token was not issued to this client")
		}
		delete(s.tokens, tokenOrID)
	}
	return nil
}

func (s *store) GetRefreshTokenInfo(context.Context, string, string) (string, string, error) {
	return "", "", op.ErrInvalidRefreshToken
}

func (s *store) SigningKey(context.Context) (op.SigningKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.key, nil
}

func (s *store) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

// KeySet publishes only the current key: after RotateKey, tokens signed
// with the old key no longer verify, as after a provider's key rollover.
func (s *store) KeySet(context.Context) ([]op.Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return []op.Key{publicKey{s.key}}, nil
}

func (s *store) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	if !ok {
		return nil, fmt.Errorf("oidctest: unknown client %q", id)
	}
	return c, nil
}

func (s *store) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	if !ok || c.Secret == "" || subtle.ConstantTimeCompare([]byte(secret), []byte(c.Secret)) != 1 {
		return errors.New("oidctest: unknown client or wrong secret")
	}
	return nil
}

// SetUserinfoFromScopes is deprecated in op; SetUserinfoFromRequest does the work.
func (s *store) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

func (s *store) SetUserinfoFromRequest(_ context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	return s.userinfo(info, req.GetSubject(), scopes)
}

func (s *store) SetUserinfoFromToken(_ context.Context, info *oidc.UserInfo, tokenID, _, _ string) error {
	s.mu.Lock()
	t, ok := s.tokens[tokenID]
	s.mu.Unlock()
	if !ok || time.Now().After(t.expires) {
		return errors.New("oidctest: access token unknown or expired")
	}
	return s.userinfo(info, t.subject, t.scopes)
}

func (s *store) userinfo(info *oidc.UserInfo, subject string, scopes []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.subjects[subject]
	if !ok {
		return fmt.Errorf("oidctest: unknown subject %q", subject)
	}
	info.Subject = u.Subject
	if slices.Contains(scopes, oidc.ScopeEmail) {
		info.Email, info.EmailVerified = u.Email, oidc.Bool(u.EmailVerified)
	}
	if slices.Contains(scopes, oidc.ScopeProfile) {
		info.Name, info.PreferredUsername = u.Name, u.Username
	}
	// Groups go into every ID token, as Dex, Keycloak and Okta can be set
	// up to do; SetGroups changes them between sign-ins.
	info.AppendClaims("groups", slices.Clone(u.Groups))
	return nil
}

func (s *store) SetIntrospectionFromToken(context.Context, *oidc.IntrospectionResponse, string, string, string) error {
	return errors.New("oidctest: introspection is not supported")
}

func (s *store) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

func (s *store) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("oidctest: JWT profile grants are not supported")
}

func (s *store) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("oidctest: JWT profile grants are not supported")
}

func (s *store) Health(context.Context) error { return nil }

func (s *store) StoreDeviceAuthorization(_ context.Context, clientID, deviceCode, userCode string, expires time.Time, scopes []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prune()
	if len(s.devices) >= maxPending {
		return errors.New("oidctest: too many device authorizations in progress")
	}
	if _, ok := s.userCode[userCode]; ok {
		return op.ErrDuplicateUserCode
	}
	s.devices[deviceCode] = &device{userCode: userCode, state: &op.DeviceAuthorizationState{ClientID: clientID, Scopes: scopes, Expires: expires}}
	s.userCode[userCode] = deviceCode
	return nil
}

func (s *store) GetDeviceAuthorizatonState(ctx context.Context, clientID, deviceCode string) (*op.DeviceAuthorizationState, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.devices[deviceCode]
	if !ok || d.state.ClientID != clientID {
		return nil, errNotFound
	}
	st := *d.state
	if st.Done || st.Denied {
		// The device code is single-use: once the client has its answer,
		// polling again finds nothing.
		delete(s.devices, deviceCode)
		delete(s.userCode, d.userCode)
	}
	return &st, nil
}

// approveDevice completes the device authorization of userCode as user.
func (s *store) approveDevice(userCode string, u *User) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.devices[s.userCode[userCode]]
	if !ok || d.state.Done || d.state.Denied || time.Now().After(d.state.Expires) {
		return errors.New("unknown or expired code: start again on your device")
	}
	d.state.Subject, d.state.AuthTime, d.state.AMR, d.state.Done = u.Subject, time.Now(), amr(true), true
	return nil
}
