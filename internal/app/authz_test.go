package app

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// tRoutePermissions is what each route must require, written down here
// independently of the route table: a route whose declared permission
// changes, or a new route nobody classified, fails the walk below.
var tRoutePermissions = map[string][]authz.Permission{
	"GET /api/v1/cas":                                          {authz.PermCARead},
	"POST /api/v1/cas":                                         {authz.PermCAManage},
	"GET /api/v1/cas/{ca}":                                     {authz.PermCARead},
	"GET /api/v1/cas/{ca}/chain":                               {authz.PermCARead},
	"GET /api/v1/cas/{ca}/csr":                                 {authz.PermCARead},
	"POST /api/v1/cas/{ca}/certificate":                        {authz.PermCAManage},
	"POST /api/v1/cas/import-root":                             {authz.PermCAManage},
	"POST /api/v1/cas/{ca}/crl":                                {authz.PermCAManage},
	"POST /api/v1/cas/{ca}/disable":                            {authz.PermCAManage},
	"POST /api/v1/cas/{ca}/enable":                             {authz.PermCAManage},
	"POST /api/v1/cas/{ca}/delete":                             {authz.PermCAManage},
	"POST /api/v1/cas/{ca}/restore":                            {authz.PermCAManage},
	"POST /api/v1/cas/{ca}/revoke":                             {authz.PermCAManage},
	"POST /api/v1/certificates/sign":                           {authz.PermCertIssue},
	"POST /api/v1/certificates/issue":                          {authz.PermCertIssue},
	"GET /api/v1/certificates":                                 {authz.PermCertRead},
	"GET /api/v1/certificates/{serial}":                        {authz.PermCertRead},
	"GET /api/v1/certificates/{serial}/pem":                    {authz.PermCertRead},
	"GET /api/v1/certificates/{serial}/key":                    {authz.PermKeyExport},
	"POST /api/v1/certificates/{serial}/revoke":                {authz.PermCertRevoke},
	"POST /api/v1/revocations":                                 {authz.PermCertRevoke},
	"GET /api/v1/profiles":                                     {authz.PermProfileRead},
	"POST /api/v1/profiles":                                    {authz.PermProfileManage},
	"GET /api/v1/profiles/{name}":                              {authz.PermProfileRead},
	"PUT /api/v1/profiles/{name}":                              {authz.PermProfileManage},
	"DELETE /api/v1/profiles/{name}":                           {authz.PermProfileManage},
	"GET /api/v1/principals":                                   {authz.PermPrincipalRead},
	"POST /api/v1/principals":                                  {authz.PermPrincipalAdmin},
	"GET /api/v1/principals/{name}":                            {authz.PermPrincipalRead},
	"POST /api/v1/principals/{name}/disable":                   {authz.PermPrincipalAdmin},
	"GET /api/v1/principals/{name}/tokens":                     {authz.PermPrincipalRead},
	"POST /api/v1/principals/{name}/tokens":                    {authz.PermPrincipalAdmin},
	"POST /api/v1/tokens/{id}/revoke":                          {authz.PermPrincipalAdmin},
	"POST /api/v1/principals/{name}/identities":                {authz.PermPrincipalAdmin},
	"POST /api/v1/principals/{name}/identities/remove":         {authz.PermPrincipalAdmin},
	"GET /api/v1/roles":                                        {authz.PermPrincipalRead},
	"POST /api/v1/roles":                                       {authz.PermPrincipalAdmin},
	"DELETE /api/v1/roles/{name}":                              {authz.PermPrincipalAdmin},
	"GET /api/v1/bindings":                                     {authz.PermPrincipalRead},
	"POST /api/v1/bindings":                                    {authz.PermPrincipalAdmin},
	"DELETE /api/v1/bindings/{id}":                             {authz.PermPrincipalAdmin},
	"GET /api/v1/requests":                                     {authz.PermCertIssue, authz.PermRequestApprove},
	"GET /api/v1/requests/{id}":                                {authz.PermCertIssue, authz.PermRequestApprove},
	"POST /api/v1/requests/{id}/approve":                       {authz.PermRequestApprove},
	"POST /api/v1/requests/{id}/reject":                        {authz.PermRequestApprove},
	"GET /api/v1/audit/events":                                 {authz.PermAuditRead},
	"GET /api/v1/audit/verify":                                 {authz.PermAuditRead},
	"GET /api/v1/reports/{kind}":                               {authz.PermReportRead},
	"POST /api/v1/acme/provisioners":                           {authz.PermCAManage},
	"GET /api/v1/acme/provisioners":                            {authz.PermCARead},
	"GET /api/v1/acme/provisioners/{name}":                     {authz.PermCARead},
	"POST /api/v1/acme/provisioners/{name}/eab":                {authz.PermPrincipalAdmin},
	"GET /api/v1/acme/provisioners/{name}/eab":                 {authz.PermPrincipalRead},
	"PATCH /api/v1/acme/provisioners/{name}":                   {authz.PermCAManage},
	"POST /api/v1/acme/provisioners/{name}/disable":            {authz.PermCAManage},
	"POST /api/v1/acme/provisioners/{name}/enable":             {authz.PermCAManage},
	"DELETE /api/v1/acme/provisioners/{name}":                  {authz.PermCAManage},
	"POST /api/v1/est/provisioners":                            {authz.PermCAManage},
	"GET /api/v1/est/provisioners":                             {authz.PermCARead},
	"GET /api/v1/est/provisioners/{name}":                      {authz.PermCARead},
	"PATCH /api/v1/est/provisioners/{name}":                    {authz.PermCAManage},
	"POST /api/v1/est/provisioners/{name}/disable":             {authz.PermCAManage},
	"POST /api/v1/est/provisioners/{name}/enable":              {authz.PermCAManage},
	"DELETE /api/v1/est/provisioners/{name}":                   {authz.PermCAManage},
	"POST /api/v1/est/provisioners/{name}/secrets":             {authz.PermCertIssue},
	"GET /api/v1/est/provisioners/{name}/secrets":              {authz.PermCARead},
	"POST /api/v1/est/provisioners/{name}/secrets/{id}/revoke": {authz.PermCertIssue},
	"POST /api/v1/acme/eab/{id}/revoke":                        {authz.PermPrincipalAdmin},
	"POST /api/v1/acme/renew-now":                              {authz.PermCertRevoke},
	"GET /api/v1/certificates/{serial}/renewal-info":           {authz.PermCertRead, authz.PermCertIssue},
	"POST /api/v1/certificates/{serial}/renew":                 {authz.PermCertIssue},
	"GET /api/v1/alerts":                                       {authz.PermCertRead},
	"POST /api/v1/alerts/test":                                 {authz.PermPrincipalAdmin},
	"POST /api/v1/alerts/deploy-failed":                        {authz.PermCertIssue},
	"POST /api/v1/rotations":                                   {authz.PermCertRevoke},
	"GET /api/v1/rotations":                                    {authz.PermCertRead, authz.PermCertRevoke},
	"GET /api/v1/rotations/{id}":                               {authz.PermCertRead, authz.PermCertRevoke},
	"GET /api/v1/jobs":                                         {authz.PermCertRead},
	"GET /api/v1/jobs/runs":                                    {authz.PermCertRead},
	"POST /api/v1/jobs/{name}/run":                             {authz.PermCAManage},
	"POST /api/v1/certificates/import":                         {authz.PermCertIssue},
	"GET /api/v1/reports/compliance":                           {authz.PermReportRead},
	"POST /api/v1/scep/provisioners":                           {authz.PermCAManage},
	"GET /api/v1/scep/provisioners":                            {authz.PermCARead},
	"GET /api/v1/scep/provisioners/{name}":                     {authz.PermCARead},
	"PATCH /api/v1/scep/provisioners/{name}":                   {authz.PermCAManage},
	"POST /api/v1/scep/provisioners/{name}/disable":            {authz.PermCAManage},
	"POST /api/v1/scep/provisioners/{name}/enable":             {authz.PermCAManage},
	"DELETE /api/v1/scep/provisioners/{name}":                  {authz.PermCAManage},
	"POST /api/v1/scep/provisioners/{name}/challenges":         {authz.PermCertIssue},
	"POST /api/v1/scep/provisioners/{name}/rotate-ra":          {authz.PermCAManage},
	// Scanned endpoints and their KPIs: read by cert:read or report:read
	// (unscoped, checked by the core); a scan reaches across the network
	// on the server's behalf, so running one is ca:manage.
	"GET /api/v1/scan/endpoints": {authz.PermCertRead, authz.PermReportRead},
	"GET /api/v1/scan/endpoint":  {authz.PermCertRead, authz.PermReportRead},
	"GET /api/v1/scan/kpis":      {authz.PermCertRead, authz.PermReportRead},
	"POST /api/v1/scan/run":      {authz.PermCAManage},
	// A person's own certificate: the right to it is the sign-in through
	// an identity provider, which the issuance path checks; a principal
	// with no permission at all gets nothing from the API (web/api/person.go).
	"POST /api/v1/certificates/person": authz.Permissions(),
	// Ending one's own sign-in, and asking who one is, take
	// authentication only (nil): a principal with no role left can still
	// sign out and be told it holds none.
	"POST /api/v1/sign-out": nil,
	"GET /api/v1/whoami":    nil,
}

// tPrincipalWithout creates, as the admin, a machine principal holding
// every permission except perms (through a custom role) and returns its
// token. With perms = every permission, the principal has no binding.
func (in *tInstance) tPrincipalWithout(t *testing.T, name string, perms []authz.Permission) string {
	t.Helper()
	var keep []string
	for _, p := range authz.Permissions() {
		if !slices.Contains(perms, p) {
			keep = append(keep, string(p))
		}
	}
	req := apitypes.CreatePrincipalRequest{Name: name, Kind: "machine", Token: true}
	if len(keep) > 0 {
		in.must(http.StatusCreated, "POST", "/api/v1/roles", apitypes.Role{Name: "role-" + name, Permissions: keep}, nil)
		req.Role = "role-" + name
	}
	var res apitypes.CreatePrincipalResult
	in.must(http.StatusCreated, "POST", "/api/v1/principals", req, &res)
	if res.Token == nil || !strings.HasPrefix(res.Token.Token, "cwt_") {
		t.Fatalf("no token for %s: %+v", name, res)
	}
	return res.Token.Token
}

// TestEveryRouteRequiresPermission walks the whole route table. For each
// route, a principal holding every permission except the route's gets 403,
// the refusal is in the audit log as denied, and nothing changes. The
// route's declared permission must be the one tRoutePermissions expects,
// so removing or weakening one route's check fails here.
func TestEveryRouteRequiresPermission(t *testing.T) {
	t.Parallel()
	in := tNewServer(t, "")
	ctx := context.Background()
	serverSerial, err := in.app.store.GetSetting(ctx, settingServerTLS)
	if err != nil {
		t.Fatal(err)
	}
	before := in.certCount()
	values := map[string]string{"ca": "issuing", "serial": string(serverSerial), "name": "web_server", "id": "0123456789abcdef", "kind": "issued"}
	routes := tAPIRoutes(t, in.app)
	if len(routes) != len(tRoutePermissions) {
		t.Errorf("the route table has %d routes, tRoutePermissions %d: classify every route here", len(routes), len(tRoutePermissions))
	}
	tokens := map[string]string{}
	for i, rt := range routes {
		key := rt.Method + " " + rt.Pattern
		want, ok := tRoutePermissions[key]
		if !ok {
			t.Errorf("route %s is not in tRoutePermissions: say which permission it needs", key)
			continue
		}
		if !slices.Equal(rt.Permissions, want) || rt.AuthenticatedOnly != (want == nil) {
			t.Errorf("route %s declares %v (authenticated only: %v), want %v", key, rt.Permissions, rt.AuthenticatedOnly, want)
		}
		if want == nil {
			continue // no principal lacks what it needs; TestSSOSignOutWithoutRoles covers it
		}
		set := strings.Join(func() []string {
			s := make([]string, len(want))
			for j, p := range want {
				s[j] = string(p)
			}
			return s
		}(), ",")
		tok, ok := tokens[set]
		if !ok {
			tok = in.tPrincipalWithout(t, "lacks-"+strings.NewReplacer(":", "-", ",", "-").Replace(set)[:min(40, len(set))]+"-"+string(rune('a'+i%26)), want)
			tokens[set] = tok
		}
		path := tPath(t, rt.Pattern, values)
		var r tResp
		if rt.Method == "POST" || rt.Method == "PUT" {
			r = in.raw(rt.Method, path, "Bearer "+tok, strings.NewReader("{}"))
		} else {
			r = in.raw(rt.Method, path, "Bearer "+tok, nil)
		}
		if r.status != http.StatusForbidden {
			t.Errorf("%s without %v: status %d, want 403: %s", key, want, r.status, tTrim(r.body))
			continue
		}
		if e := r.apiErr(t); len(want) < len(authz.Permissions()) && !strings.Contains(e.Detail, string(want[0])) {
			t.Errorf("%s: 403 detail %q does not name the permission", key, e.Detail)
		}
		if r.header.Get("X-Request-Id") == "" {
			t.Errorf("%s: no X-Request-Id", key)
		}
	}

	// Every refusal is in the audit log, as denied, with no secret in it.
	denied := map[string]int{}
	err = in.app.store.EachAuditEvent(ctx, 0, func(e *audit.Event) error {
		if e.Outcome == audit.Denied {
			denied[e.Action]++
		}
		for _, tok := range tokens {
			if strings.Contains(string(e.Details), tok) || strings.Contains(e.Target, tok) {
				t.Errorf("audit event %d holds a token", e.Seq)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, rt := range routes {
		if denied[rt.Action] == 0 && !rt.AuthenticatedOnly {
			t.Errorf("no denied audit event for %s (%s)", rt.Action, rt.Pattern)
		}
	}

	// Nothing the refused requests asked for happened.
	var c apitypes.CA
	in.must(http.StatusOK, "GET", "/api/v1/cas/issuing", nil, &c)
	if c.Status != "active" {
		t.Errorf("CA issuing is %s after refused requests, want active", c.Status)
	}
	if n := in.certCount(); n != before {
		t.Errorf("%d certificates after refused requests, want %d", n, before)
	}
}

// tUseMachineAdmin creates a machine principal bound to admin and makes
// it the instance's caller: managed keys are handed to machines only.
func (in *tInstance) tUseMachineAdmin(t *testing.T) {
	t.Helper()
	var res apitypes.CreatePrincipalResult
	in.must(http.StatusCreated, "POST", "/api/v1/principals",
		apitypes.CreatePrincipalRequest{Name: "agent", Kind: "machine", Role: "admin", Token: true}, &res)
	in.token = res.Token.Token
}

// TestCreatePrincipalRefusedGrantLeavesNothing: a principal administrator
// who asks for a role it does not hold gets 403, and no principal is left
// behind half-made.
func TestCreatePrincipalRefusedGrantLeavesNothing(t *testing.T) {
	t.Parallel()
	in := tNewServer(t, "")
	in.must(http.StatusCreated, "POST", "/api/v1/roles", apitypes.Role{Name: "iam", Permissions: []string{"principal:manage", "principal:read"}}, nil)
	var res apitypes.CreatePrincipalResult
	in.must(http.StatusCreated, "POST", "/api/v1/principals", apitypes.CreatePrincipalRequest{Name: "iam-bot", Kind: "machine", Role: "iam", Token: true}, &res)
	iam := "Bearer " + res.Token.Token
	for _, role := range []string{"admin", "issuer", "no-such-role"} {
		r := in.raw("POST", "/api/v1/principals", iam, strings.NewReader(tJSON(t, apitypes.CreatePrincipalRequest{Name: "escalated", Kind: "machine", Role: role, Token: true})))
		if r.status != http.StatusForbidden && r.status != http.StatusNotFound {
			t.Errorf("role %s: status %d, want 403 (404 for an unknown role): %s", role, r.status, tTrim(r.body))
		}
		if r := in.raw("GET", "/api/v1/principals/escalated", in.bearer(), nil); r.status != http.StatusNotFound {
			t.Fatalf("after the refused request for role %s, principal escalated exists (status %d)", role, r.status)
		}
	}
	// Within what it holds, it may.
	in.must(http.StatusCreated, "POST", "/api/v1/principals", apitypes.CreatePrincipalRequest{Name: "helper", Kind: "machine", Role: "iam"}, nil)
}
