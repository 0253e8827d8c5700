package app

import (
	"context"
	"errors"
	"math/big"
	"net/http"

	"github.com/certwright/certwright/internal/revoke"
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
		CAs: a.store, Health: a.health, Serving: a.serving.Load, CRLs: crlPort{a.revoker}, OCSP: ocspPort{a.revoker},
		Clock: a.clock, Log: a.log, RatePerSecond: a.cfg.Revocation.PublicRateLimit,
	})
	if err != nil {
		return nil, err
	}
	return recoverHTTP(a.log, h), nil
}
