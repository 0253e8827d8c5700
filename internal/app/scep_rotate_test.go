package app

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	smscep "github.com/smallstep/scep"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/issue"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/scep"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// TestSCEPRotateRARace races two RA rotations of one provisioner, on one
// server (through the API) and on two services sharing the store, as two
// replicas would: each rotation succeeds or is refused as a conflict, and
// what is left is one consistent RA: the successful rotations' audit
// events chain from the first RA to the stored one, which GetCACert
// serves.
func TestSCEPRotateRARace(t *testing.T) {
	t.Parallel()
	in := tNewServer(t, "")
	var prov apitypes.SCEPProvisioner
	in.must(http.StatusCreated, "POST", "/api/v1/scep/provisioners", apitypes.CreateSCEPProvisionerRequest{
		Name: "mdm", CA: "issuing", Profile: "client_auth", Challenge: "dynamic"}, &prov)
	other, err := scep.New(scep.Config{Clock: in.app.clock, Log: slog.New(slog.DiscardHandler), RAName: in.cfg.TLSNames[0],
		Refusals: in.app.refusals, Revoker: in.app.revoker}, in.app.store, in.app.issuer, in.app.profiles, in.app.keys)
	if err != nil {
		t.Fatal(err)
	}
	start, won := time.Now().Add(-time.Second), 0
	for _, race := range []struct {
		name   string
		rotate [2]func() error
	}{
		{"one server", [2]func() error{in.rotateRA, in.rotateRA}},
		{"two servers", [2]func() error{
			func() error { _, err := in.app.scep.RotateRA(context.Background(), authz.System(), "mdm"); return err },
			func() error { _, err := other.RotateRA(context.Background(), authz.System(), "mdm"); return err },
		}},
	} {
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, rotate := range race.rotate {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = rotate()
			}()
		}
		wg.Wait()
		before := won
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, scep.ErrConflict):
				t.Errorf("%s: rotation: %v, want success or a conflict", race.name, err)
			}
		}
		if won == before {
			t.Errorf("%s: no rotation succeeded: %v", race.name, errs)
		}
		in.wantRAChain(race.name, start, prov.RASerial, won)
	}
	// Each refused rotation's RA certificate, issued but not stored, is
	// revoked; the stored ones are not.
	in.wantLostRAsRevoked(start, 4-won)
}

// wantLostRAsRevoked checks provisioner mdm's RA certificates: those it
// stored (the first, and each successful rotation's) are not revoked,
// the other lost of them (issued by a create or rotation that lost) are,
// as cessation_of_operation.
func (in *tInstance) wantLostRAsRevoked(start time.Time, lost int) {
	in.t.Helper()
	stored := map[string]bool{}
	err := in.app.store.EachAuditEventBetween(context.Background(), start, time.Now().Add(time.Minute), func(e *audit.Event) error {
		var d struct {
			RA string `json:"ra_serial"`
		}
		if e.Action == "scep.ra.rotate" || e.Action == "scep.provisioner.create" {
			if err := json.Unmarshal(e.Details, &d); err != nil {
				return err
			}
			stored[d.RA] = true
		}
		return nil
	})
	if err != nil {
		in.t.Fatal(err)
	}
	var list apitypes.CertificateList
	in.must(http.StatusOK, "GET", "/api/v1/certificates?tag=scep:mdm&limit=100", nil, &list)
	revoked := 0
	for _, c := range list.Certificates {
		switch {
		case !slices.Contains(c.Tags, "scep-ra"):
		case stored[c.Serial] && c.Revocation != nil:
			in.t.Errorf("stored RA certificate %s is revoked", c.Serial)
		case stored[c.Serial]:
		case c.Revocation == nil || c.Revocation.Reason != "cessation_of_operation":
			in.t.Errorf("RA certificate %s was issued but not stored, and is not revoked as cessation_of_operation: %+v", c.Serial, c.Revocation)
		default:
			revoked++
		}
	}
	if revoked != lost {
		in.t.Errorf("%d RA certificates issued but not stored were revoked, want %d (one per create or rotation that lost)", revoked, lost)
	}
}

// hookedSCEPIssuer runs afterIssue once, after the first issuance.
type hookedSCEPIssuer struct {
	scep.Issuer
	once       sync.Once
	afterIssue func()
}

func (h *hookedSCEPIssuer) Issue(ctx context.Context, req issue.Request) (*issue.Result, error) {
	res, err := h.Issuer.Issue(ctx, req)
	h.once.Do(h.afterIssue)
	return res, err
}

// TestSCEPLostCreateRevokesItsRA: two servers create provisioner mdm at
// once (another commits its create while this one issues the RA
// certificate): this one's create is refused as a conflict, and the RA
// certificate it issued, which no provisioner stores, is revoked.
func TestSCEPLostCreateRevokesItsRA(t *testing.T) {
	t.Parallel()
	in := tNewServer(t, "")
	start := time.Now().Add(-time.Second)
	spec := apitypes.CreateSCEPProvisionerRequest{Name: "mdm", CA: "issuing", Profile: "client_auth", Challenge: "dynamic"}
	hooked := &hookedSCEPIssuer{Issuer: in.app.issuer, afterIssue: func() {
		in.must(http.StatusCreated, "POST", "/api/v1/scep/provisioners", spec, nil)
	}}
	other, err := scep.New(scep.Config{Clock: in.app.clock, Log: slog.New(slog.DiscardHandler), RAName: in.cfg.TLSNames[0],
		Refusals: in.app.refusals, Revoker: in.app.revoker}, in.app.store, hooked, in.app.profiles, in.app.keys)
	if err != nil {
		t.Fatal(err)
	}
	_, err = other.CreateProvisioner(context.Background(), authz.System(), scep.ProvisionerSpec{
		Name: spec.Name, CA: spec.CA, Profile: spec.Profile, Challenge: spec.Challenge})
	if !errors.Is(err, scep.ErrConflict) {
		t.Fatalf("the create that lost: %v, want a conflict", err)
	}
	in.wantLostRAsRevoked(start, 1)
}

// rotateRA rotates provisioner mdm's RA through the API; a 409 is
// scep.ErrConflict.
func (in *tInstance) rotateRA() error {
	switch r := in.call("POST", "/api/v1/scep/provisioners/mdm/rotate-ra", nil); r.status {
	case http.StatusOK:
		return nil
	case http.StatusConflict:
		return scep.ErrConflict
	default:
		return errors.New(tTrim(r.body))
	}
}

// wantRAChain checks that the scep.ra.rotate events since start, won of
// them, lead one after the other from RA serial from to the RA that
// provisioner mdm stores and serves.
func (in *tInstance) wantRAChain(name string, start time.Time, from string, won int) {
	in.t.Helper()
	next := map[string]string{}
	err := in.app.store.EachAuditEventBetween(context.Background(), start, time.Now().Add(time.Minute), func(e *audit.Event) error {
		if e.Action != "scep.ra.rotate" {
			return nil
		}
		var d struct {
			Old string `json:"old_ra_serial"`
			New string `json:"ra_serial"`
		}
		if err := json.Unmarshal(e.Details, &d); err != nil {
			return err
		}
		if _, dup := next[d.Old]; dup {
			in.t.Errorf("%s: two rotations replaced RA %s", name, d.Old)
		}
		next[d.Old] = d.New
		return nil
	})
	if err != nil {
		in.t.Fatal(err)
	}
	if len(next) != won {
		in.t.Errorf("%s: %d scep.ra.rotate events, want %d (one per successful rotation)", name, len(next), won)
	}
	cur := from
	for range won {
		n, ok := next[cur]
		if !ok {
			in.t.Fatalf("%s: no rotation replaced RA %s: %v", name, cur, next)
		}
		cur = n
	}
	var prov apitypes.SCEPProvisioner
	in.must(http.StatusOK, "GET", "/api/v1/scep/provisioners/mdm", nil, &prov)
	if prov.RASerial != cur {
		in.t.Errorf("%s: the provisioner stores RA %s, want %s, the last of the rotations", name, prov.RASerial, cur)
	}
	if served := pki.SerialHex(tNewSCEPDevice(in.t, in, "mdm").ra.SerialNumber); served != cur {
		in.t.Errorf("%s: GetCACert serves RA %s, want %s", name, served, cur)
	}
}

// hookedSCEPStore runs afterGet once, after the first provisioner read.
type hookedSCEPStore struct {
	scep.Store
	once     sync.Once
	afterGet func()
}

func (h *hookedSCEPStore) GetSCEPProvisioner(ctx context.Context, idOrName string) (*scep.Provisioner, error) {
	p, err := h.Store.GetSCEPProvisioner(ctx, idOrName)
	h.once.Do(h.afterGet)
	return p, err
}

// TestSCEPRotateRAKeepsConcurrentChanges disables a provisioner and
// switches its legacy crypto off between an RA rotation's read and its
// write: the rotation replaces the RA and nothing else, so both changes
// survive it.
func TestSCEPRotateRAKeepsConcurrentChanges(t *testing.T) {
	t.Parallel()
	in := tNewServer(t, "")
	off, disabled := false, true
	in.must(http.StatusCreated, "POST", "/api/v1/scep/provisioners", apitypes.CreateSCEPProvisionerRequest{
		Name: "mdm", CA: "issuing", Profile: "client_auth", Challenge: "dynamic", AllowLegacyCrypto: true}, nil)
	hooked := &hookedSCEPStore{Store: in.app.store, afterGet: func() {
		_, err := in.app.scep.UpdateProvisioner(context.Background(), authz.System(), "mdm",
			scep.Update{Disabled: &disabled, AllowLegacyCrypto: &off})
		if err != nil {
			t.Errorf("disable during the rotation: %v", err)
		}
	}}
	rotator, err := scep.New(scep.Config{Clock: in.app.clock, Log: slog.New(slog.DiscardHandler), RAName: in.cfg.TLSNames[0],
		Refusals: in.app.refusals, Revoker: in.app.revoker}, hooked, in.app.issuer, in.app.profiles, in.app.keys)
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := rotator.RotateRA(context.Background(), authz.System(), "mdm")
	if err != nil {
		t.Fatal(err)
	}
	got, err := in.app.scep.GetProvisioner(context.Background(), authz.System(), "mdm")
	if err != nil {
		t.Fatal(err)
	}
	if got.RASerial != rotated.RASerial {
		t.Errorf("stored RA %s, want the rotated %s", got.RASerial, rotated.RASerial)
	}
	if got.DisabledAt == nil {
		t.Error("the provisioner is enabled again after the rotation; the disable committed during it is lost")
	}
	if got.AllowLegacyCrypto {
		t.Error("legacy crypto is on again after the rotation; the switch-off committed during it is lost")
	}
}

// commitThenFailStore commits provisioner creates and RA changes, then
// reports an error, as a connection lost during COMMIT would.
type commitThenFailStore struct{ scep.Store }

var errLostCommit = errors.New("connection lost during COMMIT")

func (s commitThenFailStore) CreateSCEPProvisioner(ctx context.Context, p *scep.Provisioner, pr *authz.PrincipalRecord, b *authz.Binding, ev audit.Event) error {
	if err := s.Store.CreateSCEPProvisioner(ctx, p, pr, b, ev); err != nil {
		return err
	}
	return errLostCommit
}

func (s commitThenFailStore) SetSCEPProvisionerRA(ctx context.Context, p *scep.Provisioner, fromRA string, ev audit.Event) error {
	if err := s.Store.SetSCEPProvisionerRA(ctx, p, fromRA, ev); err != nil {
		return err
	}
	return errLostCommit
}

// TestSCEPWriteErrorAfterCommitKeepsRA: a create or rotation whose write
// committed but reported an error does not revoke the RA certificate the
// provisioner now serves (only an RA no provisioner holds is revoked),
// so devices still enrol.
func TestSCEPWriteErrorAfterCommitKeepsRA(t *testing.T) {
	t.Parallel()
	in := tNewServer(t, "")
	svc, err := scep.New(scep.Config{Clock: in.app.clock, Log: slog.New(slog.DiscardHandler), RAName: in.cfg.TLSNames[0],
		Refusals: in.app.refusals, Revoker: in.app.revoker}, commitThenFailStore{in.app.store}, in.app.issuer, in.app.profiles, in.app.keys)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := svc.CreateProvisioner(ctx, authz.System(), scep.ProvisionerSpec{
		Name: "mdm", CA: "issuing", Profile: "client_auth", Challenge: "dynamic"}); !errors.Is(err, errLostCommit) {
		t.Fatalf("create: %v, want the lost commit", err)
	}
	enrols := func(what string) {
		t.Helper()
		var prov apitypes.SCEPProvisioner
		in.must(http.StatusOK, "GET", "/api/v1/scep/provisioners/mdm", nil, &prov)
		if ra := tGetCert(t, in, prov.RASerial); ra.Revocation != nil {
			t.Fatalf("after %s: the RA the provisioner serves was revoked: %+v", what, ra.Revocation)
		}
		if rep := tNewSCEPDevice(t, in, "mdm").request("laptop", in.scepChallenge("mdm", ""), nil, nil); rep.PKIStatus != smscep.SUCCESS {
			t.Errorf("after %s: enrolment %s %s: %s", what, rep.PKIStatus, rep.FailInfo, in.lastSCEPRefusal())
		}
	}
	enrols("a create that committed")
	if _, err := svc.RotateRA(ctx, authz.System(), "mdm"); !errors.Is(err, errLostCommit) {
		t.Fatalf("rotate: %v, want the lost commit", err)
	}
	enrols("a rotation that committed")
}
