package authz

// IdentityOIDC is the kind of a principal identity that an OpenID
// provider vouches for; its value is the issuer URL, "#", and the subject
// (an issuer URL has no fragment, so the first "#" splits them).
const IdentityOIDC = "oidc"

// IdentityEmail is the kind of a principal identity that is an e-mail
// address (lower-cased): a client certificate's rfc822Name SAN, mapped by
// an administrator or added at a sign-in through an identity provider
// that verified the address.
const IdentityEmail = "email"

// OIDCIdentityValue returns the identity value of subject at issuer.
func OIDCIdentityValue(issuer, subject string) string {
	return issuer + "#" + subject
}
