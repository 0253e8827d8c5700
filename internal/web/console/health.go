package console

import (
	"crypto/x509"
	"errors"
	"net/http"
	"time"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/ca"
)

// healthView is the overview's CA health: each CA the viewer may read,
// with its expiry and how current its CRL and OCSP responses are (as the
// CA page judges them), and the scheduled jobs' last runs.
type healthView struct {
	Now time.Time
	CAs []healthRow
	// Jobs are the scheduled jobs (none when the viewer may not see them).
	Jobs []jobRow
}

// healthRow is one CA of the CA health section.
type healthRow struct {
	Name   string
	Kind   ca.Kind
	Status ca.Status
	Depth  int
	caHealth
}

// health builds the CA health section for v's viewer: nil when it may
// read neither CAs nor jobs.
func (h *Handler) health(r *http.Request, v *visit) (*healthView, error) {
	if !v.who.Can(authz.PermCARead) && !v.who.Can(authz.PermCertRead) {
		return nil, nil
	}
	ctx, cancel := h.storeContext(r)
	defer cancel()
	now := h.d.Clock.Now()
	hv := &healthView{Now: now}
	if v.who.Can(authz.PermCARead) {
		all, err := h.d.CAs.List(ctx)
		if err != nil {
			return nil, err
		}
		fresh := h.revocationState()
		for _, n := range caTree(all) {
			c := n.CA
			if v.who.Allow(authz.PermCARead, authz.Resource{CAID: c.ID, CAName: c.Name}) != nil {
				continue
			}
			cert, err := x509.ParseCertificate(c.CertDER)
			if err != nil {
				cert = nil
			}
			hv.CAs = append(hv.CAs, healthRow{Name: c.Name, Kind: c.Kind, Status: c.Status, Depth: n.Depth, caHealth: healthOf(c, cert, fresh, now)})
		}
	}
	jobs, err := h.d.Lifecycle.Jobs(ctx, v.who)
	if err != nil && !errors.Is(err, authz.ErrForbidden) {
		return nil, err
	}
	for _, j := range jobs {
		hv.Jobs = append(hv.Jobs, jobView(j, now))
	}
	return hv, nil
}
