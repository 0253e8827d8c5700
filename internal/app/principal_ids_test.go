package app

import (
	"bufio"
	"bytes"
	"context"
	"crypto/elliptic"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// TestReservedPrincipalNames: the names the server uses for itself, for
// anonymous callers and for ACME accounts, and names shaped like principal
// IDs, cannot be taken; the refusal says why and creates nothing.
func TestReservedPrincipalNames(t *testing.T) {
	t.Parallel()
	in := tNewServer(t, "")
	for _, name := range []string{"system", "anonymous", "acme:default", "p_0123456789abcdef"} {
		r := in.call("POST", "/api/v1/principals", apitypes.CreatePrincipalRequest{Name: name, Kind: "machine", Role: authz.RoleIssuer, Token: true})
		if r.status != http.StatusBadRequest {
			t.Errorf("principal %q: status %d, want 400: %s", name, r.status, tTrim(r.body))
			continue
		}
		if e := r.apiErr(t); !strings.Contains(e.Detail, name) {
			t.Errorf("principal %q: detail %q does not name it", name, e.Detail)
		}
		if name != "acme:default" && !strings.Contains(r.apiErr(t).Detail, "reserved") && !strings.Contains(r.apiErr(t).Detail, "shape") {
			t.Errorf("principal %q: detail %q does not say the name is reserved", name, r.apiErr(t).Detail)
		}
		if r := in.call("GET", "/api/v1/principals/"+name, nil); r.status != http.StatusNotFound {
			t.Errorf("principal %q exists after the refusal (status %d)", name, r.status)
		}
	}
}

// TestServerOwnedByIDNotName: a principal called "system" (made directly
// in the store, as a database from before names were reserved may hold)
// is not the server: emergency rotation includes its certificates, and its
// audit events carry its own principal ID. The server's own TLS
// certificate is still recognised (its key is never exported), and the
// log, with events by ID, still verifies.
func TestServerOwnedByIDNotName(t *testing.T) {
	t.Parallel()
	in := tNewServer(t, "")
	ctx := context.Background()
	rec := &authz.PrincipalRecord{ID: "p_5157e30000000001", Name: "system", Kind: authz.KindMachine, CreatedBy: "legacy"}
	if err := in.app.store.CreatePrincipal(ctx, rec, audit.New(authz.System(), in.clk.Now(), "principal.create", "system", nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := in.app.access.Bind(ctx, authz.System(), rec.ID, authz.RoleIssuer, authz.Scope{}); err != nil {
		t.Fatal(err)
	}
	tok, _, err := in.app.access.CreateToken(ctx, authz.System(), rec.ID, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	var impostor apitypes.IssuedCertificate
	r := in.raw("POST", "/api/v1/certificates/sign", "Bearer "+tok, strings.NewReader(tJSON(t, apitypes.SignRequest{
		CSRPEM: string(tCSR(t, tECKey(t, elliptic.P256()), "impostor.internal.test")), Profile: "web_server"})))
	if r.status != http.StatusCreated {
		t.Fatalf("sign as the principal called system: %d %s", r.status, tTrim(r.body))
	}
	if err := json.Unmarshal(r.body, &impostor); err != nil {
		t.Fatal(err)
	}

	var rot apitypes.Rotation
	in.must(http.StatusCreated, "POST", "/api/v1/rotations", apitypes.RotationRequest{CA: "issuing", Grace: "1h"}, &rot)
	if !slices.ContainsFunc(rot.Items, func(it apitypes.RotationItem) bool { return it.Serial == impostor.Serial }) {
		t.Errorf("emergency rotation skipped %s, requested by a principal merely named system: items %+v", impostor.Serial, rot.Items)
	}

	// Its events carry its ID, the server's carry "system".
	var buf bytes.Buffer
	if err := in.app.store.EachAuditEvent(ctx, 0, func(e *audit.Event) error {
		if e.Action == "certificate.issue" && e.Target == impostor.Serial && e.PrincipalID != rec.ID {
			t.Errorf("issuance by the principal called system recorded principal_id %q, want %s", e.PrincipalID, rec.ID)
		}
		if e.Action == "server.start" && e.PrincipalID != authz.System().ID {
			t.Errorf("server.start recorded principal_id %q, want %q", e.PrincipalID, authz.System().ID)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// The export carries the IDs, and the chain still verifies.
	er := in.call("GET", "/api/v1/audit/events", nil)
	buf.Write(er.body)
	found := false
	for sc := bufio.NewScanner(&buf); sc.Scan(); {
		var ev apitypes.AuditEvent
		if json.Unmarshal(sc.Bytes(), &ev) == nil && ev.PrincipalID == rec.ID {
			found = true
		}
	}
	if !found {
		t.Error("the audit export carries no principal_id of the principal called system")
	}
	var v apitypes.AuditVerifyResult
	in.must(http.StatusOK, "GET", "/api/v1/audit/verify", nil, &v)
	if !v.Intact {
		t.Errorf("audit chain with principal IDs does not verify: %+v", v.Problem)
	}

	// The server's own certificate is still the server's: its key stays home.
	serverSerial, err := in.app.store.GetSetting(ctx, settingServerTLS)
	if err != nil {
		t.Fatal(err)
	}
	in.tUseMachineAdmin(t)
	if r := in.call("GET", "/api/v1/certificates/"+string(serverSerial)+"/key", nil); r.status != http.StatusForbidden {
		t.Errorf("export of the server's own TLS key: status %d, want 403: %s", r.status, tTrim(r.body))
	}
}
