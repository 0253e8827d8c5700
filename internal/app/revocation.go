package app

import (
	"context"
	"errors"
	"fmt"
	"github.com/certwright/certwright/internal/web/scepweb"
	"math/big"
	"net/http"
	"time"

	"github.com/certwright/certwright/internal/access"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/revoke"
	"github.com/certwright/certwright/internal/store"
	"github.com/certwright/certwright/internal/web/pkipub"
)

// crlPort serves the revocation service's CRLs to the plain-HTTP edge.
type crlPort struct{ svc *revoke.Service }

func (p crlPort) CRL(ctx context.Context, caID string) (*pkipub.CRL, error) {
	c, err := p.svc.CRL(ctx, caID)
	if errors.Is(err, revoke.ErrNoCA) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &pkipub.CRL{DER: c.DER, Number: big.NewInt(c.Number), ThisUpdate: c.ThisUpdate, NextUpdate: c.NextUpdate}, nil
}

// ocspPort serves OCSP responses to the plain-HTTP edge.
type ocspPort struct{ svc *revoke.Service }

func (p ocspPort) Respond(ctx context.Context, caID string, req []byte) pkipub.OCSPAnswer {
	r := p.svc.Respond(ctx, caID, req)
	return pkipub.OCSPAnswer{DER: r.DER, ETag: r.ETag, ThisUpdate: r.ThisUpdate, NextUpdate: r.NextUpdate, Cacheable: r.Cacheable}
}

// PublicHandler is the plain-HTTP handler: CRLs, OCSP, CA certificates, health.
func (a *App) PublicHandler() (http.Handler, error) {
	h, err := pkipub.New(pkipub.Deps{
		CAs: a.store, Health: a.health, NotReady: a.notReady, CRLs: crlPort{a.revoker}, OCSP: ocspPort{a.revoker},
		Clock: a.clock, Log: a.log, RatePerSecond: a.cfg.Revocation.PublicRateLimit,
	})
	if err != nil {
		return nil, err
	}
	scepH, err := a.scepHandler()
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle(scepweb.Prefix, scepH)
	mux.Handle("/", h)
	return recoverHTTP(a.log, mux), nil
}

// signInCerts revokes, through the revocation service, the person
// certificates of a sign-in that ended (access.CertificateRevoker): the
// token revoked by an administrator or by the person signing out, or the
// principal disabled. The revocations are the server's own (authz.System,
// with the request's source and ID), reason cessationOfOperation, each
// audited with the token of its sign-in and what ended it.
type signInCerts struct {
	store *store.DB
	rv    *revoke.Service
	clock clock.Clock
}

var _ access.CertificateRevoker = signInCerts{}

// signInRevokeTimeout bounds the revocations after a sign-in ends. They
// do not stop when the caller goes away: the token is revoked already.
const signInRevokeTimeout = time.Minute

func (c signInCerts) RevokeTokenCertificates(ctx context.Context, who authz.Principal, tokenID string) ([]string, error) {
	certs, err := c.store.TokenCertificates(ctx, tokenID, c.clock.Now())
	if err != nil {
		return nil, err
	}
	return c.revoke(ctx, who, "token.revoke", certs)
}

func (c signInCerts) RevokePrincipalCertificates(ctx context.Context, who authz.Principal, principalID string) ([]string, error) {
	certs, err := c.store.PrincipalSignInCertificates(ctx, principalID, c.clock.Now())
	if err != nil {
		return nil, err
	}
	return c.revoke(ctx, who, "principal.disable", certs)
}

// revoke revokes each of certs, going on past a failure; it returns the
// serials it revoked and the failures, joined.
func (c signInCerts) revoke(ctx context.Context, who authz.Principal, cause string, certs []store.SignInCertificate) ([]string, error) {
	if len(certs) == 0 {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), signInRevokeTimeout)
	defer cancel()
	sys := authz.System()
	sys.Source, sys.RequestID = who.Source, who.RequestID
	var done []string
	var errs []error
	for _, sc := range certs {
		_, created, err := c.rv.Revoke(ctx, revoke.Request{Principal: sys, Serial: sc.Serial, Reason: pki.ReasonCessationOfOperation,
			Details: map[string]any{"token_id": sc.TokenID, "cause": cause, "cause_by": who.Name}})
		if err != nil {
			errs = append(errs, fmt.Errorf("certificate %s: %w", sc.Serial, err))
			continue
		}
		if created {
			done = append(done, sc.Serial)
		}
	}
	return done, errors.Join(errs...)
}
