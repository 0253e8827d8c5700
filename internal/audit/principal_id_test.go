package audit_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
)

// TestEventPrincipalID: audit.New records the acting principal's ID; an
// event with an ID hashes over it (changing or blanking it breaks the
// hash), and one without hashes exactly as events recorded before IDs
// existed (a hash computed by the original code), so old chains verify.
func TestEventPrincipalID(t *testing.T) {
	t.Parallel()
	old := audit.Event{Time: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC), Principal: "admin", Source: "127.0.0.1",
		Action: "token.create", Target: "ci", Outcome: audit.Success, RequestID: "r1", Details: json.RawMessage(`{"token_id":"abc"}`)}
	// Computed by ComputeHash at commit 5e5a77d, before principal IDs.
	const v1 = "7fca900d8116758085d6af079e614268de0907d1bda53bb0ed1421ed7913250d"
	if got := old.ComputeHash(audit.Genesis()).String(); got != v1 {
		t.Errorf("an event without a principal ID hashes to %s, want the original %s", got, v1)
	}

	withID := old
	withID.PrincipalID = "p_0123456789abcdef"
	h := withID.ComputeHash(audit.Genesis())
	if h.String() == v1 {
		t.Error("the principal ID is not covered by the hash")
	}
	// Computed by ComputeHash at commit b6707ed, before it hashed one
	// buffer; the second event's details outgrow that buffer's stack array.
	const v2 = "67a2ca17a7ce2b44bd711a7b16c91d671f959a3377576d0bd5db962e3f258a64"
	if h.String() != v2 {
		t.Errorf("an event with a principal ID hashes to %s, want the original %s", h, v2)
	}
	big := withID
	big.Details = json.RawMessage(`{"pad":"` + strings.Repeat("x", 600) + `"}`)
	const v2big = "216beb766a9599e85a55ca78cc26d99ad866b2b20fd6f2f8d077373e6b7af51d"
	if got := big.ComputeHash(audit.Genesis()).String(); got != v2big {
		t.Errorf("an event with large details hashes to %s, want the original %s", got, v2big)
	}
	other := withID
	other.PrincipalID = "p_fedcba9876543210"
	if bytes.Equal(other.ComputeHash(audit.Genesis()), h) {
		t.Error("changing the principal ID leaves the hash unchanged")
	}

	p := authz.WithRole("ci", authz.KindMachine, authz.RoleIssuer, authz.Scope{})
	p.ID = "p_0123456789abcdef"
	if e := audit.New(p, old.Time, "x", "", nil); e.PrincipalID != p.ID || e.Principal != "ci" {
		t.Errorf("audit.New recorded principal %q id %q, want ci %s", e.Principal, e.PrincipalID, p.ID)
	}
	if e := audit.New(authz.System(), old.Time, "x", "", nil); e.PrincipalID != authz.System().ID {
		t.Errorf("the server's events carry id %q, want %q", e.PrincipalID, authz.System().ID)
	}
}
