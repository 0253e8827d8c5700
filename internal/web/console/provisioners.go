package console

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/certwright/certwright/internal/authz"
)

// provisioners is what the ACME and EST pages share about their kind of
// provisioner: each is read with ca:read over its CA (an unknown one and
// one out of scope alike are not found, without naming the others) and
// disabled or enabled with ca:manage over it, through the kind's service,
// which checks the principal itself.
type provisioners[P any] struct {
	// label names the kind for people ("ACME"); base is its pages' path.
	label, base     string
	list            func(ctx context.Context, p authz.Principal) ([]P, error)
	get             func(ctx context.Context, p authz.Principal, name string) (P, error)
	enable, disable func(ctx context.Context, p authz.Principal, name string) (P, error)
	// facts are a provisioner's name and its CA.
	facts func(P) (string, authz.Resource)
	// notFound and conflict are the service's errors for an unknown
	// provisioner and a change its state does not allow.
	notFound, conflict error
	// stops says what disabling stops, for the confirmation.
	stops string
}

func (k provisioners[P]) notFoundPage() errorPage {
	return errorPage{Title: "Provisioner not found", Message: "There is no " + k.label + " provisioner of this name that you may see."}
}

// readable lists the provisioners whose CA the viewer's ca:read covers;
// false: it answered the error.
func (k provisioners[P]) readable(h *Handler, w http.ResponseWriter, r *http.Request, v *visit) ([]P, bool) {
	ctx, cancel := h.storeContext(r)
	defer cancel()
	all, err := k.list(ctx, v.who)
	if err != nil {
		h.acmeFailed(w, r, v, err)
		return nil, false
	}
	var out []P
	for _, p := range all {
		if _, ca := k.facts(p); v.who.Allow(authz.PermCARead, ca) == nil {
			out = append(out, p)
		}
	}
	return out, true
}

// find returns the provisioner named in the path if the viewer's ca:read
// covers its CA; false: it answered 404 or the error.
func (k provisioners[P]) find(h *Handler, w http.ResponseWriter, r *http.Request, v *visit) (P, bool) {
	ctx, cancel := h.storeContext(r)
	defer cancel()
	name := r.PathValue("name")
	p, err := k.get(ctx, v.who, name)
	switch {
	case err == nil:
		// A service may find a provisioner by its ID too: the page is
		// its name's.
		if got, ca := k.facts(p); got == name && v.who.Allow(authz.PermCARead, ca) == nil {
			return p, true
		}
	case errors.Is(err, k.notFound):
	default:
		h.acmeFailed(w, r, v, err)
		return p, false
	}
	h.render(w, r, http.StatusNotFound, "error", v, k.notFoundPage())
	var zero P
	return zero, false
}

// change disables (enable false) or enables the provisioner in the path
// through the service; disabling needs the form's confirmation. show
// answers a refusal on the provisioner's page.
func (k provisioners[P]) change(h *Handler, enable bool, show func(w http.ResponseWriter, r *http.Request, v *visit, status int, msg string)) func(http.ResponseWriter, *http.Request, *visit) {
	return func(w http.ResponseWriter, r *http.Request, v *visit) {
		p, ok := k.find(h, w, r, v)
		if !ok {
			return
		}
		name, _ := k.facts(p)
		h.toggle(w, r, v, enable, stateChange{
			Unconfirmed:  "Tick the confirmation to disable " + name + ": " + k.stops,
			Conflict:     k.conflict,
			NotFound:     k.notFound,
			NotFoundPage: k.notFoundPage(),
			Show:         func(status int, msg string) { show(w, r, v, status, msg) },
			Done:         k.base + "/" + url.PathEscape(name),
			Run: func(ctx context.Context) error {
				op := k.disable
				if enable {
					op = k.enable
				}
				_, err := op(ctx, v.who, name)
				return err
			},
		})
	}
}
