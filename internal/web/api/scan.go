package api

import (
	"context"
	"net/http"
	"strconv"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/discovery"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/web/apitypes"
	"github.com/certwright/certwright/internal/web/report"
)

// Scans is what the scan routes need: discovery.Monitor.
type Scans interface {
	Endpoints(ctx context.Context, p authz.Principal, q discovery.EndpointQuery) ([]*discovery.Endpoint, error)
	Endpoint(ctx context.Context, p authz.Principal, address string, limit int) (*discovery.EndpointHistory, error)
	RunNow(ctx context.Context, p authz.Principal, targets []string) (discovery.Result, error)
	KPIs(ctx context.Context, p authz.Principal) (*discovery.KPIs, error)
}

// scanRoutes are registered only when Scans is wired. Reading needs
// cert:read or report:read (with no scope: the core checks); running a
// scan needs ca:manage with no scope, and is audited by the core.
func (h *Handler) scanRoutes() []Route {
	if h.d.Scans == nil {
		return nil
	}
	read := []authz.Permission{authz.PermCertRead, authz.PermReportRead}
	return []Route{
		route("GET", "/api/v1/scan/endpoints", "scan.endpoints", h.listEndpoints, read...),
		route("GET", "/api/v1/scan/endpoint", "scan.endpoint", h.showEndpoint, read...),
		route("GET", "/api/v1/scan/kpis", "scan.kpis", h.scanKPIs, read...),
		slow(route("POST", "/api/v1/scan/run", "scan.run", h.runScan, authz.PermCAManage)),
	}
}

// listEndpoints answers ?encryption=, ?status=, ?gone=true, ?after= and
// ?limit= (1 to 1000, default 500).
func (h *Handler) listEndpoints(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	v := r.URL.Query()
	q := discovery.EndpointQuery{Encryption: discovery.Encryption(v.Get("encryption")), Status: discovery.Status(v.Get("status")), After: v.Get("after"), Limit: 500}
	if q.Encryption != "" && !isOneOf(string(q.Encryption), discovery.Encryptions()) {
		return badInput("encryption %q: want implicit-tls, starttls, optional, none or unknown", q.Encryption)
	}
	switch q.Status {
	case "", discovery.StatusManaged, discovery.StatusStale, discovery.StatusRevoked, discovery.StatusExpired, discovery.StatusUnmanaged:
	default:
		return badInput("status %q: want managed, stale, revoked, expired or unmanaged", q.Status)
	}
	if s := v.Get("gone"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return badInput("gone %q: want true or false", s)
		}
		q.Gone = b
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			return badInput("limit %q: want 1 to 1000", s)
		}
		q.Limit = n
	}
	eps, err := h.d.Scans.Endpoints(r.Context(), p, q)
	if err != nil {
		return err
	}
	out := apitypes.EndpointList{Endpoints: make([]apitypes.Endpoint, 0, len(eps))}
	for _, ep := range eps {
		out.Endpoints = append(out.Endpoints, endpointView(ep))
	}
	if len(eps) == q.Limit {
		out.Next = eps[len(eps)-1].Address
	}
	return writeJSON(w, http.StatusOK, out)
}

func isOneOf[T ~string](s string, vals []T) bool {
	for _, v := range vals {
		if string(v) == s {
			return true
		}
	}
	return false
}

// showEndpoint answers ?address=HOST:PORT with its newest ?limit= changes.
func (h *Handler) showEndpoint(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	addr := r.URL.Query().Get("address")
	if addr == "" {
		return badInput("address is required: the endpoint's host:port, as scan endpoints lists it")
	}
	limit := 100
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			return badInput("limit %q: want 1 to 1000", s)
		}
		limit = n
	}
	hist, err := h.d.Scans.Endpoint(r.Context(), p, addr, limit)
	if err != nil {
		return err
	}
	out := apitypes.EndpointDetail{Endpoint: endpointView(hist.Endpoint), Events: []apitypes.EndpointEvent{}, ServedAt: []apitypes.ServedAt{}}
	for _, ev := range hist.Events {
		e := apitypes.EndpointEvent{Kind: string(ev.Kind), At: ev.At, From: ev.From, To: ev.To}
		if !ev.Since.IsZero() {
			e.Since = &ev.Since
		}
		out.Events = append(out.Events, e)
	}
	for _, s := range hist.Sightings {
		out.ServedAt = append(out.ServedAt, apitypes.ServedAt{Endpoint: s.Endpoint, FirstSeen: s.FirstSeen, LastSeen: s.LastSeen})
	}
	return writeJSON(w, http.StatusOK, out)
}

func (h *Handler) scanKPIs(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	k, err := h.d.Scans.KPIs(r.Context(), p)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, report.ScanKPIsView(k))
}

// runScan scans now: the body's targets (at most discovery.MaxRunTargets
// host:port pairs), or the configured ones, within the route's deadline;
// what was not finished by then is counted, not recorded.
func (h *Handler) runScan(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	var req apitypes.ScanRequest
	if err := h.decodeOptional(r, &req); err != nil {
		return err
	}
	if len(req.Targets) > 256 {
		return badInput("%d targets: at most 256 in one request (use CIDR ranges)", len(req.Targets))
	}
	res, err := h.d.Scans.RunNow(r.Context(), p, req.Targets)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, apitypes.ScanResult{Targets: res.Targets, Reachable: res.Reachable, Changes: res.Changes,
		Discovered: res.Discovered, Alerts: res.Alerts, Skipped: res.Skipped, Unfinished: res.Unfinished})
}

func endpointView(ep *discovery.Endpoint) apitypes.Endpoint {
	o := &ep.Latest
	v := apitypes.Endpoint{
		Address: ep.Address, IP: o.Address, Host: o.Host, ServerName: o.ServerName, Protocol: o.Protocol,
		Encryption: string(o.Encryption), Versions: append([]string{}, o.Versions...), VersionsComplete: o.VersionsComplete,
		Negotiated: o.Negotiated, Suite: o.Suite, Suites: append([]string{}, o.Suites...), SuitesComplete: o.SuitesComplete,
		WeakSuites: o.WeakSuites, ForwardSecrecy: string(o.ForwardSecrecy), Protocols: protocolsView(o.Protocols),
		DHBits: append([]int{}, o.DHBits...), Findings: []apitypes.ScanFinding{}, ObservedAt: o.ObservedAt,
		FirstSeen: ep.FirstSeen, LastSeen: ep.LastSeen, LastScanned: ep.LastScanned, Misses: ep.Misses,
		LastError: ep.LastError, Gone: ep.Gone, Error: o.Error,
	}
	if g := o.Grade; g != nil {
		v.Grade = &apitypes.ScanGrade{Letter: g.Letter, Score: g.Score, RulesVersion: g.RulesVersion, Reasons: []apitypes.ScanReason{}}
		for _, rs := range g.Reasons {
			v.Grade.Reasons = append(v.Grade.Reasons, apitypes.ScanReason{Code: rs.Code, Message: rs.Message})
		}
	}
	for _, f := range o.Findings {
		v.Findings = append(v.Findings, apitypes.ScanFinding{Code: f.Code, Severity: string(f.Severity), Message: f.Message})
	}
	if o.HSTS != nil {
		v.HSTSMaxAge = &o.HSTS.MaxAge
	}
	for _, der := range o.Chain {
		v.ChainPEM += string(pki.CertPEM(der))
	}
	if m := ep.Match; m != nil {
		v.Match = &apitypes.ScanMatch{Status: string(m.Status), Serial: m.Serial, Fingerprint: m.Fingerprint, Source: string(m.Source),
			Subject: m.Subject, NotAfter: m.NotAfter, Successor: m.Successor}
	}
	if !ep.ExposedSince.IsZero() {
		v.ExposedSince = &ep.ExposedSince
	}
	return v
}

// protocolsView is the per-version detail of an observation, never nil.
func protocolsView(ps []discovery.ProtocolDetail) []apitypes.ScanProtocol {
	out := make([]apitypes.ScanProtocol, 0, len(ps))
	for _, p := range ps {
		v := apitypes.ScanProtocol{Version: p.Version, Summary: p.Summary(), ServerOrder: p.ServerOrder,
			Suites: make([]apitypes.ScanSuite, 0, len(p.Suites)), Groups: append([]string{}, p.Groups...)}
		for _, s := range p.Suites {
			v.Suites = append(v.Suites, apitypes.ScanSuite{Name: s.Name, KeyExchange: s.KeyExchange, Cipher: s.Cipher, Bits: s.Bits,
				Group: s.Group, DHBits: s.DHBits, Weak: s.Weak})
		}
		out = append(out, v)
	}
	return out
}
