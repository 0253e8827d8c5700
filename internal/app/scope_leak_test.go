package app

import (
	"crypto/elliptic"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"testing"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// tScopedTeam issues certificates in and out of *.team.internal.test and
// returns a token of an issuer scoped to those names, with the serials
// issued inside and outside its scope.
func tScopedTeam(t *testing.T, in *tInstance, nIn, nOut int) (tok string, inside, outside []string) {
	t.Helper()
	for i := range nIn + nOut {
		name := "h" + string(rune('a'+i)) + ".team.internal.test"
		if i >= nIn {
			name = "h" + string(rune('a'+i)) + ".other.internal.test"
		}
		c := in.sign(tCSR(t, tECKey(t, elliptic.P256()), name))
		if i < nIn {
			inside = append(inside, c.Serial)
		} else {
			outside = append(outside, c.Serial)
		}
	}
	var res apitypes.CreatePrincipalResult
	in.must(http.StatusCreated, "POST", "/api/v1/principals", apitypes.CreatePrincipalRequest{
		Name: "team-ci", Kind: "machine", Role: authz.RoleIssuer, Token: true,
		Scope: apitypes.Scope{Names: []string{"*.team.internal.test"}},
	}, &res)
	return "Bearer " + res.Token.Token, inside, outside
}

// TestCertificateCursorStaysInScope: paging through GET /certificates as a
// principal scoped to some names, every page's next cursor is a serial the
// principal was shown (never one outside its scope), and the pages
// together hold exactly the certificates within its scope.
func TestCertificateCursorStaysInScope(t *testing.T) {
	for _, b := range tBackends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			in := tNewServer(t, b.dbURL(t))
			tok, inside, outside := tScopedTeam(t, in, 3, 6)
			var seen []string
			after := ""
			for page := 0; page < 20; page++ {
				q := url.Values{"limit": {"1"}}
				if after != "" {
					q.Set("after", after)
				}
				r := in.raw("GET", "/api/v1/certificates?"+q.Encode(), tok, nil)
				if r.status != http.StatusOK {
					t.Fatalf("page %d: status %d: %s", page, r.status, tTrim(r.body))
				}
				var l apitypes.CertificateList
				if err := json.Unmarshal(r.body, &l); err != nil {
					t.Fatal(err)
				}
				for _, c := range l.Certificates {
					seen = append(seen, c.Serial)
				}
				if l.Next == "" {
					break
				}
				if slices.Contains(outside, l.Next) {
					t.Fatalf("page %d: next cursor %s is a certificate outside the caller's scope", page, l.Next)
				}
				if len(l.Certificates) == 0 || l.Next != l.Certificates[len(l.Certificates)-1].Serial {
					t.Fatalf("page %d: next cursor %s is not the last certificate shown (%d shown)", page, l.Next, len(l.Certificates))
				}
				after = l.Next
			}
			sort.Strings(seen)
			sort.Strings(inside)
			if !slices.Equal(seen, inside) {
				t.Errorf("pages held %v, want exactly the in-scope %v", seen, inside)
			}
		})
	}
}

// TestRotationItemsFilteredByScope: a scoped cert:revoke holder sees, in a
// rotation, only the items whose certificates are within its scope; a
// rotation with none is not found for it and not listed.
func TestRotationItemsFilteredByScope(t *testing.T) {
	t.Parallel()
	in := tNewServer(t, "")
	tok, inside, outside := tScopedTeam(t, in, 2, 2)

	var all apitypes.Rotation
	in.must(http.StatusCreated, "POST", "/api/v1/rotations", apitypes.RotationRequest{CA: "issuing", Grace: "1h"}, &all)
	// One certificate's key only: a rotation of an out-of-scope certificate.
	var other apitypes.Certificate
	in.must(http.StatusOK, "GET", "/api/v1/certificates/"+outside[0], nil, &other)
	var hidden apitypes.Rotation
	in.must(http.StatusCreated, "POST", "/api/v1/rotations", apitypes.RotationRequest{SPKISHA256: other.SPKISHA256, Grace: "1h"}, &hidden)

	r := in.raw("GET", "/api/v1/rotations/"+all.ID, tok, nil)
	if r.status != http.StatusOK {
		t.Fatalf("show rotation: status %d: %s", r.status, tTrim(r.body))
	}
	var got apitypes.Rotation
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatal(err)
	}
	var serials []string
	for _, it := range got.Items {
		serials = append(serials, it.Serial)
	}
	sort.Strings(serials)
	sort.Strings(inside)
	if !slices.Equal(serials, inside) {
		t.Errorf("scoped caller sees items %v, want only its own %v", serials, inside)
	}
	n := 0
	for _, c := range got.Counts {
		n += c
	}
	if n != len(inside) {
		t.Errorf("counts %v cover %d items, want %d", got.Counts, n, len(inside))
	}

	if r := in.raw("GET", "/api/v1/rotations/"+hidden.ID, tok, nil); r.status != http.StatusNotFound {
		t.Errorf("rotation of an out-of-scope certificate: status %d, want 404: %s", r.status, tTrim(r.body))
	}
	r = in.raw("GET", "/api/v1/rotations", tok, nil)
	var list apitypes.RotationList
	if err := json.Unmarshal(r.body, &list); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, rot := range list.Rotations {
		ids = append(ids, rot.ID)
	}
	if !slices.Contains(ids, all.ID) || slices.Contains(ids, hidden.ID) {
		t.Errorf("scoped caller lists rotations %v, want %s and not %s", ids, all.ID, hidden.ID)
	}
	// The administrator still sees everything.
	in.must(http.StatusOK, "GET", "/api/v1/rotations/"+all.ID, nil, &got)
	if len(got.Items) < len(inside)+len(outside) {
		t.Errorf("admin sees %d items, want at least %d", len(got.Items), len(inside)+len(outside))
	}
}
