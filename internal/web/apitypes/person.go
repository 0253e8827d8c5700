package apitypes

// PersonCertificateRequest asks for the caller's own short-lived client
// certificate under the person profile (POST /api/v1/certificates/person),
// with the token of a sign-in through an identity provider. Only a CSR
// travels: the private key stays where it was made.
type PersonCertificateRequest struct {
	// CSRPEM names only e-mail addresses the caller holds as identities
	// (its subject, if any, is one of them as the common name).
	CSRPEM string `json:"csr_pem"`
	// Validity is a Go duration such as "12h" (default: the profile's
	// 12 hours; at most its 24).
	Validity string `json:"validity,omitempty"`
}

// RuleSSOSignIn is the Rule of the 403 answering a person-certificate
// request whose credential is not the token of a sign-in through an
// identity provider: the client should tell its user to sign in so.
const RuleSSOSignIn = "sso_sign_in"
