package compliance_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/ca"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/compliance"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/keys"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/store"
	"github.com/certwright/certwright/internal/store/storetest"
)

func tLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

func tNewImporter(t *testing.T, st *store.DB) *compliance.Importer {
	t.Helper()
	im, err := compliance.NewImporter(st, clock.NewFake(tNow), tLog())
	if err != nil {
		t.Fatal(err)
	}
	return im
}

// tStoreCA records c as one of this instance's CAs.
func tStoreCA(t *testing.T, st *store.DB, id, name string, c tCA) {
	t.Helper()
	rec := &ca.CA{ID: id, Name: name, Kind: ca.KindRoot, Status: ca.StatusActive,
		Key:     keys.Ref{Provider: "software", ID: "key-" + id, Algorithm: pki.ECDSAP256, Blob: []byte("wrapped")},
		CertDER: c.cert.Raw, CreatedAt: tNow, UpdatedAt: tNow}
	if err := st.CreateCA(context.Background(), rec, audit.Event{Time: tNow, Principal: "test", Action: "ca.create", Outcome: audit.Success}); err != nil {
		t.Fatal(err)
	}
}

func tCount(t *testing.T, st *store.DB) int {
	t.Helper()
	n, err := st.CountCertificates(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestImportBundleStoresLeafWithChain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := storetest.OpenSQLite(t)
	im := tNewImporter(t, st)
	root := tRoot(t, "Elsewhere Root")
	inter := root.sub(t, "Elsewhere Issuing")
	leaf := inter.leaf(t, "app.example.com", leafOpts{})
	// Bundles come in any order; the chain is found by signature.
	res, err := im.Import(ctx, compliance.ImportRequest{
		Principal: tImporter(), Owner: " team-web ", Tags: []string{"legacy", "legacy"},
		Files: []compliance.ImportFile{{Name: "app.pem", Data: tPEM(root.cert, leaf, inter.cert)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Imported) != 1 || len(res.Skipped) != 0 {
		t.Fatalf("imported %d, skipped %v; want the leaf alone", len(res.Imported), res.Skipped)
	}
	got, err := st.GetCertificate(ctx, compliance.InventorySerial(leaf.Raw))
	if err != nil {
		t.Fatal(err)
	}
	want := &inventory.Certificate{
		Serial: pki.Fingerprint(leaf.Raw), Source: inventory.SourceImported, Issuer: leaf.Issuer.String(),
		IssuerSerial: pki.SerialHex(leaf.SerialNumber), Requester: "ops", Owner: "team-web",
		Subject: "CN=app.example.com", KeyAlgorithm: pki.FamilyECDSA, KeyBits: 256, SignatureAlgorithm: "ECDSA-SHA256",
		Status: inventory.StatusValid, Fingerprint: pki.Fingerprint(leaf.Raw), SPKISHA256: pki.Fingerprint(leaf.RawSubjectPublicKeyInfo),
	}
	if strings.HasPrefix(want.Serial, "00") {
		want.Serial = compliance.InventorySerial(leaf.Raw)
	}
	for _, c := range []struct{ field, got, want string }{
		{"Serial", got.Serial, want.Serial}, {"Source", string(got.Source), string(want.Source)},
		{"Issuer", got.Issuer, want.Issuer}, {"IssuerSerial", got.IssuerSerial, want.IssuerSerial},
		{"Requester", got.Requester, want.Requester}, {"Owner", got.Owner, want.Owner}, {"Subject", got.Subject, want.Subject},
		{"KeyAlgorithm", got.KeyAlgorithm, want.KeyAlgorithm}, {"SignatureAlgorithm", got.SignatureAlgorithm, want.SignatureAlgorithm},
		{"Status", string(got.Status), string(want.Status)}, {"Fingerprint", got.Fingerprint, want.Fingerprint},
		{"SPKISHA256", got.SPKISHA256, want.SPKISHA256}, {"CAID", got.CAID, ""}, {"Profile", got.Profile, ""},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.field, c.got, c.want)
		}
	}
	if got.KeyBits != 256 || !got.NotAfter.Equal(leaf.NotAfter) || !slices.Equal(got.SANs, []string{"app.example.com"}) || !slices.Equal(got.Tags, []string{"legacy"}) {
		t.Errorf("record = %+v", got)
	}
	if len(got.Chain) != 2 || !bytes.Equal(got.Chain[0], inter.cert.Raw) || !bytes.Equal(got.Chain[1], root.cert.Raw) {
		t.Errorf("chain has %d certificates, want the intermediate then the root", len(got.Chain))
	}
	if !bytes.Equal(got.DER, leaf.Raw) {
		t.Error("DER differs from the imported certificate")
	}
	var evs []*audit.Event
	if err := st.EachAuditEvent(ctx, 1, func(e *audit.Event) error {
		if e.Action == "certificate.import" {
			evs = append(evs, e)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Target != got.Serial || evs[0].Principal != "ops" || !strings.Contains(string(evs[0].Details), `"file":"app.pem"`) {
		t.Errorf("audit events = %+v, want one certificate.import of %s by ops", evs, got.Serial)
	}
}

func TestImportSeveralFilesAndDuplicates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := storetest.OpenSQLite(t)
	im := tNewImporter(t, st)
	root := tRoot(t, "Elsewhere Root")
	a := root.leaf(t, "a.example.com", leafOpts{})
	b := root.leaf(t, "b.example.com", leafOpts{})
	lone := tRoot(t, "Lonely CA") // a CA certificate on its own is monitored too
	res, err := im.Import(ctx, compliance.ImportRequest{Principal: tImporter(), Files: []compliance.ImportFile{
		{Name: "a.pem", Data: tPEM(a, root.cert)}, {Name: "b.der", Data: b.Raw}, {Name: "ca.pem", Data: tPEM(lone.cert)},
		{Name: "again.pem", Data: tPEM(a)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	var subjects []string
	for _, c := range res.Imported {
		subjects = append(subjects, c.Subject)
	}
	if want := []string{"CN=a.example.com", "CN=b.example.com", "CN=Lonely CA,O=Elsewhere Inc"}; !slices.Equal(subjects, want) {
		t.Errorf("imported %q, want %q", subjects, want)
	}
	if len(res.Skipped) != 1 || res.Skipped[0].Reason != compliance.ReasonDuplicate || res.Skipped[0].Fingerprint != pki.Fingerprint(a.Raw) {
		t.Errorf("skipped = %+v, want a.example.com once as a duplicate", res.Skipped)
	}
	if n := tCount(t, st); n != 3 {
		t.Errorf("inventory holds %d certificates, want 3", n)
	}

	// A second import of the same files changes nothing.
	res, err = im.Import(ctx, compliance.ImportRequest{Principal: tImporter(), Files: []compliance.ImportFile{{Name: "a.pem", Data: tPEM(a, b)}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Imported) != 0 || len(res.Skipped) != 2 || res.Skipped[0].Reason != compliance.ReasonInInventory {
		t.Errorf("re-import: imported %d, skipped %+v; want both skipped as already in the inventory", len(res.Imported), res.Skipped)
	}
	if n := tCount(t, st); n != 3 {
		t.Errorf("after the re-import the inventory holds %d certificates, want 3", n)
	}
}

func TestImportRefusalStoresNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := storetest.OpenSQLite(t)
	im := tNewImporter(t, st)
	root := tRoot(t, "Elsewhere Root")
	key := tECKey(t)
	leaf := root.leaf(t, "app.example.com", leafOpts{key: key})
	other := root.leaf(t, "other.example.com", leafOpts{})
	keyPEM := tKeyPEM(t, key)
	tests := []struct {
		name  string
		files []compliance.ImportFile
		p     authz.Principal
		want  error
	}{
		{"private key in the second file", []compliance.ImportFile{{Name: "ok.pem", Data: tPEM(other)}, {Name: "app.pem", Data: append(tPEM(leaf), keyPEM...)}},
			tImporter(), compliance.ErrInvalid},
		{"CSR", []compliance.ImportFile{{Name: "ok.pem", Data: tPEM(other)}, {Name: "req.pem", Data: []byte("-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n")}},
			tImporter(), compliance.ErrInvalid},
		{"principal scoped to other names", []compliance.ImportFile{{Name: "ok.pem", Data: tPEM(other, leaf)}},
			authz.Principal{Name: "web", Bindings: []authz.Binding{{Role: authz.Role{Name: "issuer", Permissions: []authz.Permission{authz.PermCertIssue}},
				Scope: authz.Scope{Names: []string{"other.example.com"}}}}}, authz.ErrForbidden},
		{"principal without cert:issue", []compliance.ImportFile{{Name: "ok.pem", Data: tPEM(other)}},
			authz.Principal{Name: "viewer", Bindings: []authz.Binding{{Role: authz.Role{Name: "viewer", Permissions: []authz.Permission{authz.PermCertRead}}}}}, authz.ErrForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tCount(t, st)
			seq, _, err := st.AuditHead(ctx)
			if err != nil {
				t.Fatal(err)
			}
			_, err = im.Import(ctx, compliance.ImportRequest{Principal: tt.p, Files: tt.files})
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			after, _, _ := st.AuditHead(ctx)
			if n := tCount(t, st); n != before || after != seq {
				t.Errorf("a refused import stored %d certificates and %d audit events", n-before, after-seq)
			}
		})
	}
	for _, bad := range []compliance.ImportRequest{
		{Principal: tImporter(), Files: []compliance.ImportFile{{Name: "ok.pem", Data: tPEM(other)}}, Tags: []string{"a,b"}},
		{Principal: tImporter(), Files: []compliance.ImportFile{{Name: "ok.pem", Data: tPEM(other)}}, Owner: "line\nbreak"},
		{Principal: tImporter(), Files: []compliance.ImportFile{{Name: "ok.pem", Data: tPEM(other)}}, Owner: strings.Repeat("o", 201)},
	} {
		if _, err := im.Import(ctx, bad); !errors.Is(err, compliance.ErrInvalid) {
			t.Errorf("tags %q owner %q: err = %v, want ErrInvalid", bad.Tags, bad.Owner, err)
		}
	}
	if n := tCount(t, st); n != 0 {
		t.Errorf("the inventory holds %d certificates after refused imports", n)
	}
}

func TestImportRecognisesOurCAs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := storetest.OpenSQLite(t)
	im := tNewImporter(t, st)
	ours := tRoot(t, "Our Root")
	tStoreCA(t, st, "ca_ours", "ours", ours)
	leaf := ours.leaf(t, "svc.example.internal", leafOpts{})
	res, err := im.Import(ctx, compliance.ImportRequest{Principal: tImporter(),
		Files: []compliance.ImportFile{{Name: "svc.pem", Data: tPEM(leaf)}, {Name: "root.pem", Data: tPEM(ours.cert)}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Imported) != 1 || res.Imported[0].CAID != "ca_ours" {
		t.Fatalf("imported %+v, want the leaf with CAID ca_ours", res.Imported)
	}
	if len(res.Skipped) != 1 || !strings.Contains(res.Skipped[0].Reason, "CA ours") {
		t.Errorf("skipped %+v, want the CA's own certificate", res.Skipped)
	}
	// A principal limited to another CA may not import what ours issued.
	scoped := authz.Principal{Name: "scoped", Bindings: []authz.Binding{{Role: authz.Role{Name: "issuer", Permissions: []authz.Permission{authz.PermCertIssue}},
		Scope: authz.Scope{CAs: []string{"other"}}}}}
	_, err = im.Import(ctx, compliance.ImportRequest{Principal: scoped, Files: []compliance.ImportFile{{Name: "x.pem", Data: tPEM(ours.leaf(t, "x.example.internal", leafOpts{}))}}})
	if !errors.Is(err, authz.ErrForbidden) {
		t.Errorf("scoped principal: err = %v, want ErrForbidden", err)
	}
}

func TestImportSkipsCertificatesIssuedHere(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := storetest.OpenSQLite(t)
	im := tNewImporter(t, st)
	ours := tRoot(t, "Our Root")
	leaf := ours.leaf(t, "svc.example.internal", leafOpts{})
	rec := &inventory.Certificate{Serial: pki.SerialHex(leaf.SerialNumber), CAID: "ca_ours", Profile: "web_server", Requester: "ops",
		Subject: leaf.Subject.String(), NotBefore: leaf.NotBefore, NotAfter: leaf.NotAfter, KeyAlgorithm: pki.FamilyECDSA, KeyBits: 256,
		SignatureAlgorithm: leaf.SignatureAlgorithm.String(), Status: inventory.StatusValid, Fingerprint: pki.Fingerprint(leaf.Raw),
		SPKISHA256: pki.Fingerprint(leaf.RawSubjectPublicKeyInfo), DER: leaf.Raw, CreatedAt: tNow, Source: inventory.SourceIssued}
	if err := st.InsertCertificate(ctx, rec, audit.Event{Time: tNow, Principal: "ops", Action: "certificate.issue", Outcome: audit.Success}); err != nil {
		t.Fatal(err)
	}
	res, err := im.Import(ctx, compliance.ImportRequest{Principal: tImporter(), Files: []compliance.ImportFile{{Name: "svc.pem", Data: tPEM(leaf)}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Imported) != 0 || len(res.Skipped) != 1 || res.Skipped[0].Reason != compliance.ReasonInInventory {
		t.Errorf("imported %d, skipped %+v; want it skipped: it was issued here", len(res.Imported), res.Skipped)
	}
}

func TestInventorySerialIsCanonical(t *testing.T) {
	t.Parallel()
	for i := range 600 {
		der := []byte{byte(i), byte(i >> 8), 'x'}
		s := compliance.InventorySerial(der)
		n, err := pki.NormalizeSerial(s)
		if err != nil || n != s {
			t.Fatalf("InventorySerial(%x) = %q, which normalizes to %q (%v): cert show could not find it", der, s, n, err)
		}
		if fp := pki.Fingerprint(der); !strings.HasSuffix(fp, s) || strings.TrimLeft(fp[:len(fp)-len(s)], "0") != "" {
			t.Fatalf("InventorySerial(%x) = %q is not the fingerprint %q without leading zero octets", der, s, fp)
		}
	}
}
