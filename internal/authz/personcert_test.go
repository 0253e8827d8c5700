package authz_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/store"
)

// acceptAll stands in for the chain and revocation check, which this test
// is not about: it looks at what the credential row says.
type acceptAll struct{}

func (acceptAll) VerifyClient(context.Context, *x509.Certificate, []*x509.Certificate, time.Time) error {
	return nil
}

// personCert records, as the issuance path does, a 12-hour person
// certificate for alice@example.test issued to principal p through the
// sign-in of token tokenID ("" for an ordinary credential).
func personCert(t *testing.T, db *store.DB, p *authz.PrincipalRecord, serial int64, tokenID string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), NotBefore: now, NotAfter: now.Add(12 * time.Hour),
		EmailAddresses: []string{"alice@example.test"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	c := &inventory.Certificate{Serial: pki.SerialHex(leaf.SerialNumber), CAID: "ca1", Profile: "person", Requester: p.Name,
		SANs: []string{"alice@example.test"}, NotBefore: leaf.NotBefore, NotAfter: leaf.NotAfter, KeyAlgorithm: pki.FamilyECDSA,
		KeyBits: 256, SignatureAlgorithm: "ECDSA-SHA256", Status: inventory.StatusValid, Source: inventory.SourceIssued,
		DER: der, CreatedAt: now, RequesterID: p.ID, ClientPrincipalID: p.ID, ClientTokenID: tokenID}
	if err := db.InsertCertificate(context.Background(), c, ev("certificate.issue")); err != nil {
		t.Fatal(err)
	}
	return leaf
}

// TestPersonCertificateEndsWithItsSignIn: a person certificate
// authenticates while the token of the sign-in it was issued to stands,
// also past that token's natural expiry (certificates of 12 hours,
// sign-ins of 8), and is refused, with the reason, as soon as that token
// is revoked — also by another server on the same database, since no
// cache stands in between. A certificate naming a token the server does
// not hold is refused; an ordinary credential names none and is
// untouched.
func TestPersonCertificateEndsWithItsSignIn(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, env *cacheEnv) {
		ctx := context.Background()
		alice := newPrincipal(t, env.db, "alice", authz.KindHuman, authz.RoleViewer)
		if err := env.db.AddIdentity(ctx, &authz.Identity{Kind: authz.IdentityEmail, Value: "alice@example.test", PrincipalID: alice.ID, CreatedAt: now},
			ev("identity.add")); err != nil {
			t.Fatal(err)
		}
		tok, rec := tokenFor(t, env.db, alice.ID, now.Add(8*time.Hour))
		signedIn := personCert(t, env.db, alice, 1, rec.ID)
		ordinary := personCert(t, env.db, alice, 2, "")
		unknown := personCert(t, env.db, alice, 3, "00112233445566ff")
		a := authz.NewAuthenticator(env.db, acceptAll{}, env.clk.Now)

		accepted := func(leaf *x509.Certificate, why string) {
			t.Helper()
			if p, err := a.AuthenticateCertificate(ctx, leaf, nil); err != nil || p.ID != alice.ID {
				t.Errorf("%s: AuthenticateCertificate = %q, %v; want alice", why, p.Name, err)
			}
		}
		refusedBecause := func(leaf *x509.Certificate, why, reason string) {
			t.Helper()
			p, err := a.AuthenticateCertificate(ctx, leaf, nil)
			var ae *authz.AuthError
			if !errors.As(err, &ae) || !errors.Is(err, authz.ErrUnauthenticated) || !strings.Contains(ae.Reason, reason) {
				t.Errorf("%s: AuthenticateCertificate = %q, %v (%+v); want refused: %s", why, p.Name, err, ae, reason)
			}
		}

		accepted(signedIn, "sign-in standing")
		accepted(ordinary, "ordinary credential")
		refusedBecause(unknown, "token unknown", "issued to the sign-in of token 00112233445566ff, which this server does not hold")

		env.clk.Advance(9 * time.Hour)
		refused(t, a, tok, "the sign-in's token after its expiry")
		accepted(signedIn, "the sign-in's token expired, not revoked")

		if _, err := env.other.RevokeToken(ctx, rec.ID, env.clk.Now(), ev("token.revoke")); err != nil {
			t.Fatal(err)
		}
		refusedBecause(signedIn, "the sign-in's token revoked by another server",
			"client certificate "+pki.SerialHex(signedIn.SerialNumber)+" was issued to the sign-in of token "+rec.ID+", which has been revoked (signed out); sign in again")
		accepted(ordinary, "ordinary credential, a token revoked")
	})
}
