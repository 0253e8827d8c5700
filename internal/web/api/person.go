package api

import (
	"net/http"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/issue"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/profile"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// personRoutes serve a person's own short-lived client certificate.
//
// The route asks for any permission, as whoami does, rather than
// cert:issue: the right to the certificate comes from the sign-in through
// an identity provider and the addresses it verified, which the issuance
// path checks (issue.Request.Person), not from a role — a person in a
// viewers group gets one too. A principal holding no permission at all is
// refused here as on every other route: the certificate would
// authenticate it to nothing.
func (h *Handler) personRoutes() []Route {
	return []Route{
		route("POST", "/api/v1/certificates/person", "certificate.issue", h.personCert, authz.Permissions()...),
	}
}

func (h *Handler) personCert(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	var req apitypes.PersonCertificateRequest
	if err := h.decode(r, &req); err != nil {
		return err
	}
	if strings.TrimSpace(req.CSRPEM) == "" {
		return badInput("csr_pem is required: a person certificate is issued for a key made on the person's machine")
	}
	csr, err := pki.ParseCSR([]byte(req.CSRPEM))
	if err != nil {
		return badInput("csr_pem: %v", err)
	}
	var validity time.Duration
	if req.Validity != "" {
		if validity, err = time.ParseDuration(req.Validity); err != nil || validity <= 0 {
			return badInput("validity %q: want a positive duration such as 12h or 90m", req.Validity)
		}
	}
	res, err := h.d.Issuer.Issue(r.Context(), issue.Request{
		Principal: p, CA: h.defaultCA(""), Profile: profile.Person, CSR: csr, Validity: validity, Person: true,
	})
	if err != nil {
		return err
	}
	out, err := h.issued(r, res)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, out)
}
