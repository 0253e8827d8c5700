package acme_test

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"testing"

	"github.com/certwright/certwright/internal/acme"
)

// subjectCSR asks for names with a subject full of unverified claims.
// The serialNumber attribute is one web_server does not allow at all.
func subjectCSR(t *testing.T, serialAttr bool, names ...string) []byte {
	t.Helper()
	subj := pkix.Name{
		CommonName: names[0], Organization: []string{"Bank of Example"}, OrganizationalUnit: []string{"Payments"},
		Country: []string{"US"}, Locality: []string{"Springfield"},
	}
	if serialAttr {
		subj.ExtraNames = []pkix.AttributeTypeAndValue{{Type: asn1.ObjectIdentifier{2, 5, 4, 5}, Value: "serial-claim"}}
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: subj, DNSNames: names}, newKey(t))
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func finalizeSubject(t *testing.T, e *env, prov *acme.Provisioner, serialAttr bool, names ...string) pkix.Name {
	t.Helper()
	acct := e.account(t, e.svc, prov)
	o := e.readyOrder(t, e.svc, prov, acct, dnsIDs(names...)...)
	o, err := e.svc.Finalize(context.Background(), prov, acct, o.ID, subjectCSR(t, serialAttr, names...))
	if err != nil {
		t.Fatalf("Finalize: %v", err)
	}
	rec, err := e.db.GetCertificate(context.Background(), o.CertSerial)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(rec.DER)
	if err != nil {
		t.Fatal(err)
	}
	return leaf.Subject
}

// TestFinalizeKeepsOnlyCommonName: a CSR carrying O/OU/C/L and other
// attributes gets a certificate whose subject is the validated CN alone,
// unless the provisioner allows subject fields.
func TestFinalizeKeepsOnlyCommonName(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	prov := e.provisioner(t, acme.ProvisionerSpec{Name: "cn-only"})
	if prov.AllowSubjectFields {
		t.Fatal("subject fields allowed by default")
	}
	subj := finalizeSubject(t, e, prov, true, "subject.example.test")
	if subj.CommonName != "subject.example.test" || len(subj.Names) != 1 {
		t.Fatalf("certificate subject is %q (%d attributes), want CN=subject.example.test only", subj.String(), len(subj.Names))
	}

	allowed := e.provisioner(t, acme.ProvisionerSpec{Name: "with-subject", AllowSubjectFields: true})
	if !allowed.AllowSubjectFields {
		t.Fatal("allow_subject_fields not stored")
	}
	subj = finalizeSubject(t, e, allowed, false, "kept.example.test")
	if subj.CommonName != "kept.example.test" || len(subj.Organization) != 1 || subj.Organization[0] != "Bank of Example" {
		t.Fatalf("with allow_subject_fields the subject is %q", subj.String())
	}
}
