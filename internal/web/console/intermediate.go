package console

import (
	"context"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/ca"
	"github.com/certwright/certwright/internal/issue"
	"github.com/certwright/certwright/internal/lint"
	"github.com/certwright/certwright/internal/pki"
)

// caCreateTimeout bounds creating a CA from the page: generating an RSA
// key outlasts one store read.
const caCreateTimeout = time.Minute

// intermediateForm is the form creating an intermediate CA, as shown
// (with the API's defaults) or as posted. The name constraints are lists
// separated by commas or spaces, as `ca create-intermediate` takes them.
type intermediateForm struct {
	Name, CommonName, Organization, Country, Parent, KeyAlg, Days, PathLen string
	PermitDNS, ExcludeDNS, PermitIP, ExcludeIP, PermitEmail, PermitURI     string
	// Parents are the CAs the viewer may create an intermediate under;
	// KeyAlgs the key algorithms offered.
	Parents []string
	KeyAlgs []pki.KeyAlgorithm
}

func newIntermediateForm() *intermediateForm {
	return &intermediateForm{KeyAlg: string(ca.DefaultIntermediateKey), Days: strconv.Itoa(ca.DefaultIntermediateDays),
		PathLen: strconv.Itoa(ca.DefaultIntermediatePathLen)}
}

func intermediateFormFrom(r *http.Request) *intermediateForm {
	v := func(k string) string { return strings.TrimSpace(r.PostFormValue(k)) }
	return &intermediateForm{Name: v("name"), CommonName: v("cn"), Organization: v("org"), Country: v("country"), Parent: v("parent"),
		KeyAlg: v("key"), Days: v("days"), PathLen: v("path_len"), PermitDNS: v("permit_dns"), ExcludeDNS: v("exclude_dns"),
		PermitIP: v("permit_ip"), ExcludeIP: v("exclude_ip"), PermitEmail: v("permit_email"), PermitURI: v("permit_uri")}
}

// spec reads the form into the CA definition the core validates; its
// errors name the field and how to fix it.
func (f *intermediateForm) spec() (*ca.Spec, error) {
	if f.Name == "" {
		return nil, errors.New("Name: give the new CA's short name (lower-case letters, digits, '-' or '_').")
	}
	if f.CommonName == "" {
		return nil, errors.New("Common name: give the subject common name the CA certificate carries.")
	}
	if f.Parent == "" {
		return nil, errors.New("Parent: choose the CA that signs the new one.")
	}
	spec := &ca.Spec{Name: f.Name, Subject: pkix.Name{CommonName: f.CommonName}, KeyAlg: ca.DefaultIntermediateKey,
		PermittedDNS: splitList(f.PermitDNS), ExcludedDNS: splitList(f.ExcludeDNS),
		PermittedEmail: splitList(f.PermitEmail), PermittedURI: splitList(f.PermitURI)}
	if f.Organization != "" {
		spec.Subject.Organization = []string{f.Organization}
	}
	if f.Country != "" {
		spec.Subject.Country = []string{f.Country}
	}
	var err error
	if f.KeyAlg != "" {
		if spec.KeyAlg, err = pki.ParseKeyAlgorithm(f.KeyAlg); err != nil {
			return nil, fmt.Errorf("Key algorithm: %s.", userReason(err))
		}
	}
	days := ca.DefaultIntermediateDays
	if f.Days != "" {
		// Bounded here, not only by the core: a huge number of days
		// would overflow the duration into the core's range.
		if days, err = strconv.Atoi(f.Days); err != nil || days < 1 || days > 30*366 {
			return nil, fmt.Errorf("Validity %q: give a whole number of days from 1 to 10,980 (30 years).", clip(f.Days, 100))
		}
	}
	spec.Validity = time.Duration(days) * 24 * time.Hour
	spec.MaxPathLen = ca.DefaultIntermediatePathLen
	if f.PathLen != "" {
		if spec.MaxPathLen, err = strconv.Atoi(f.PathLen); err != nil || spec.MaxPathLen < -1 {
			return nil, fmt.Errorf("Path length %q: give how many CAs may sit below this one (0 for none), or -1 for no limit.", clip(f.PathLen, 100))
		}
	}
	if spec.PermittedIP, err = cidrs("Permitted IP ranges", f.PermitIP); err != nil {
		return nil, err
	}
	if spec.ExcludedIP, err = cidrs("Excluded IP ranges", f.ExcludeIP); err != nil {
		return nil, err
	}
	return spec, nil
}

// splitList splits a list separated by commas or white space.
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r' })
}

func cidrs(field, s string) ([]*net.IPNet, error) {
	var out []*net.IPNet
	for _, c := range splitList(s) {
		_, n, err := net.ParseCIDR(c)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not a CIDR range (write 10.0.0.0/8 or fd00::/8).", field, clip(c, 100))
		}
		out = append(out, n)
	}
	return out, nil
}

// createIntermediate creates an intermediate CA through the same core
// call as `POST /api/v1/cas` (type intermediate), which checks the
// viewer's ca:manage over the new CA's name and over its parent, and
// audits ca.create. It needs the form's confirmation; every refusal
// shows the form again, as posted, with the reason.
func (h *Handler) createIntermediate(w http.ResponseWriter, r *http.Request, v *visit) {
	f := intermediateFormFrom(r)
	show := func(status int, msg string) { h.showCAs(w, r, v, status, "", msg, f) }
	if r.PostFormValue("confirm") != "yes" {
		show(http.StatusBadRequest, "Tick the confirmation to create the CA: it generates a key and signs a CA certificate with the parent's key.")
		return
	}
	spec, err := f.spec()
	if err != nil {
		show(http.StatusBadRequest, err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), caCreateTimeout)
	defer cancel()
	c, err := h.d.Authority.CreateIntermediate(ctx, v.who, f.Parent, spec)
	var le *lint.Error
	switch {
	case err == nil:
	case errors.Is(err, authz.ErrForbidden):
		show(http.StatusForbidden, "Refused: "+publicReason(err))
		return
	case errors.Is(err, authz.ErrNotFound):
		show(http.StatusBadRequest, "Parent: there is no CA named "+strconv.Quote(clip(f.Parent, 100))+".")
		return
	case errors.Is(err, ca.ErrNotIssuing):
		show(http.StatusConflict, "Parent: "+userReason(err)+".")
		return
	case errors.Is(err, issue.ErrInvalid), errors.Is(err, ca.ErrSpec), errors.Is(err, issue.ErrConflict), errors.As(err, &le):
		show(http.StatusBadRequest, userReason(err))
		return
	default:
		h.unavailable(w, r, err)
		return
	}
	http.Redirect(w, r, "/cas?"+url.Values{"changed": {"created"}, "ca": {c.Name}}.Encode(), http.StatusSeeOther)
}
