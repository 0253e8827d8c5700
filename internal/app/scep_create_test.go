package app

import (
	"net/http"
	"sync"
	"testing"

	"github.com/certwright/certwright/internal/web/apitypes"
)

// TestSCEPCreateConflictLeavesNothing checks that a create refused for a
// name taken leaves no RA certificate (with its retained key) and no
// principal behind: a name in use, the name of a deleted provisioner
// (whose principal "scep:NAME" stays, as its certificates name it), and
// two creates racing for one new name, of which one wins.
func TestSCEPCreateConflictLeavesNothing(t *testing.T) {
	t.Parallel()
	in := tNewServer(t, "")
	create := func(name string) tResp {
		return in.call("POST", "/api/v1/scep/provisioners", apitypes.CreateSCEPProvisionerRequest{
			Name: name, CA: "issuing", Profile: "client_auth", Challenge: "dynamic"})
	}
	principals := func() int {
		var l apitypes.PrincipalList
		in.must(http.StatusOK, "GET", "/api/v1/principals", nil, &l)
		return len(l.Principals)
	}
	in.must(http.StatusCreated, "POST", "/api/v1/scep/provisioners", apitypes.CreateSCEPProvisionerRequest{
		Name: "mdm", CA: "issuing", Profile: "client_auth", Challenge: "dynamic"}, nil)
	in.must(http.StatusCreated, "POST", "/api/v1/scep/provisioners", apitypes.CreateSCEPProvisionerRequest{
		Name: "old", CA: "issuing", Profile: "client_auth", Challenge: "dynamic"}, nil)
	in.must(http.StatusOK, "POST", "/api/v1/scep/provisioners/old/disable", nil, nil)
	in.must(http.StatusOK, "DELETE", "/api/v1/scep/provisioners/old", nil, nil)

	certs, prs := in.certCount(), principals()
	for _, name := range []string{"mdm", "old"} {
		if r := create(name); r.status != http.StatusConflict {
			t.Errorf("create %s again: %d %s, want 409", name, r.status, tTrim(r.body))
		}
	}
	if n, p := in.certCount(), principals(); n != certs || p != prs {
		t.Errorf("refused creates left %d certificates and %d principals behind", n-certs, p-prs)
	}

	var wg sync.WaitGroup
	statuses := make([]int, 4)
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = create("raced").status
		}()
	}
	wg.Wait()
	won := 0
	for _, st := range statuses {
		switch st {
		case http.StatusCreated:
			won++
		case http.StatusConflict:
		default:
			t.Errorf("racing create: status %d, want 201 or 409", st)
		}
	}
	if won != 1 {
		t.Errorf("%d of 4 racing creates won, want 1: %v", won, statuses)
	}
	if n, p := in.certCount(), principals(); n != certs+1 || p != prs+1 {
		t.Errorf("4 racing creates left %d certificates and %d principals, want 1 RA certificate and 1 principal", n-certs, p-prs)
	}
}
