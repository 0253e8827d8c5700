package issue_test

import (
	"context"
	"crypto/x509/pkix"
	"testing"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/issue"
)

// TestExportKeyLeavesNoKeyInMemory (issue 13 #20): handing out a retained
// managed key unwraps it without the provider's signer cache, so the key
// does not stay in memory for the life of the process.
func TestExportKeyLeavesNoKeyInMemory(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	prof := e.retainProfile(t)
	bot := authz.WithRole("bot", authz.KindMachine, authz.RoleIssuer, authz.Scope{})
	res, err := e.svc.Issue(ctx, issue.Request{Principal: bot, CA: "issuing", Profile: prof.Name,
		Subject: pkix.Name{CommonName: "m1.example.internal"}})
	if err != nil {
		t.Fatal(err)
	}
	before := e.kp.CachedSigners()
	for range 3 {
		if _, err := e.svc.ExportKey(ctx, bot, res.Cert.Serial); err != nil {
			t.Fatal(err)
		}
	}
	if after := e.kp.CachedSigners(); after != before {
		t.Fatalf("the provider holds %d unwrapped keys after 3 exports, %d before", after, before)
	}
}
