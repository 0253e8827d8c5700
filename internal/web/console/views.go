package console

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/store"
)

// Views stores the inventory's saved views; every call names the
// principal, and a view of another principal is not found.
type Views interface {
	// CreateView refuses a principal's view past max (store.ErrTooMany)
	// or of a name it has (store.ErrConflict); ev is appended with it.
	CreateView(ctx context.Context, v *inventory.SavedView, max int, ev audit.Event) error
	ListViews(ctx context.Context, principalID string, limit int) ([]*inventory.SavedView, error)
	GetView(ctx context.Context, principalID, id string) (*inventory.SavedView, error)
	DeleteView(ctx context.Context, principalID, id string, ev audit.Event) error
}

// Bounds of saved views: per principal, a name's length, a query's.
const (
	maxViews     = 50
	maxViewName  = 64
	maxViewQuery = 2000
)

// viewLink is a saved view as the inventory page lists it.
type viewLink struct{ ID, Name, Href string }

// openView sends the browser to the inventory filtered as the viewer's
// saved view says; another principal's view is not found.
func (h *Handler) openView(w http.ResponseWriter, r *http.Request, v *visit) {
	ctx, cancel := h.storeContext(r)
	defer cancel()
	sv, err := h.d.Views.GetView(ctx, v.who.ID, r.PathValue("id"))
	if err != nil {
		h.viewFailed(w, r, v, err)
		return
	}
	http.Redirect(w, r, "/certificates?"+sv.Query, http.StatusSeeOther)
}

// saveView saves the inventory's current filter under a name, for the
// viewer alone (audited); the filter is checked as the page checks it.
func (h *Handler) saveView(w http.ResponseWriter, r *http.Request, v *visit) {
	name := strings.TrimSpace(r.PostFormValue("name"))
	raw := r.PostFormValue("query")
	bad := func(msg string) {
		h.render(w, r, http.StatusBadRequest, "error", v, errorPage{Title: "View not saved", Message: msg})
	}
	switch {
	case name == "":
		bad("Give the view a name.")
		return
	case len(name) > maxViewName:
		bad("The view's name has " + strconv.Itoa(len(name)) + " bytes; give at most " + strconv.Itoa(maxViewName) + ".")
		return
	case !utf8.ValidString(name) || strings.IndexFunc(name, func(c rune) bool { return !unicode.IsPrint(c) }) >= 0:
		bad("The view's name has a control character; use letters, digits, spaces and punctuation.")
		return
	case len(raw) > maxViewQuery:
		bad("The filter is longer than " + strconv.Itoa(maxViewQuery) + " bytes; narrow it to what you need.")
		return
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		bad("The filter is not a query string (" + err.Error() + "); save it from the inventory page.")
		return
	}
	names, err := h.caNames(r)
	if err != nil {
		h.unavailable(w, r, err)
		return
	}
	view := viewQuery(q)
	if _, err := certFilter(view, names, h.d.Clock.Now()); err != nil {
		bad("The filter is not valid: " + err.Error() + ".")
		return
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		h.unavailable(w, r, err)
		return
	}
	now := h.d.Clock.Now()
	sv := &inventory.SavedView{ID: hex.EncodeToString(id), PrincipalID: v.who.ID, Name: name, Query: view.Encode(), CreatedAt: now}
	ev := audit.New(v.who, now, "console.view_save", name, map[string]any{"view": sv.ID, "query": sv.Query})
	ctx, cancel := h.storeContext(r)
	defer cancel()
	if err := h.d.Views.CreateView(ctx, sv, maxViews, ev); err != nil {
		h.viewFailed(w, r, v, err)
		return
	}
	http.Redirect(w, r, "/certificates?"+sv.Query, http.StatusSeeOther)
}

// deleteView deletes one of the viewer's saved views (audited), with the
// form's confirmation.
func (h *Handler) deleteView(w http.ResponseWriter, r *http.Request, v *visit) {
	if r.PostFormValue("confirm") != "yes" {
		h.render(w, r, http.StatusBadRequest, "error", v, errorPage{Title: "View not deleted", Message: "Tick the confirmation to delete the saved view."})
		return
	}
	ctx, cancel := h.storeContext(r)
	defer cancel()
	id := r.PathValue("id")
	ev := audit.New(v.who, h.d.Clock.Now(), "console.view_delete", id, map[string]any{"view": id})
	if err := h.d.Views.DeleteView(ctx, v.who.ID, id, ev); err != nil {
		h.viewFailed(w, r, v, err)
		return
	}
	http.Redirect(w, r, "/certificates", http.StatusSeeOther)
}

func (h *Handler) viewFailed(w http.ResponseWriter, r *http.Request, v *visit, err error) {
	switch {
	case errors.Is(err, authz.ErrNotFound):
		h.render(w, r, http.StatusNotFound, "error", v, errorPage{Title: "Not found", Message: "You have no saved view by this ID."})
	case errors.Is(err, store.ErrConflict):
		h.render(w, r, http.StatusConflict, "error", v, errorPage{Title: "View not saved", Message: "You have a saved view of this name already; choose another name, or delete that view first."})
	case errors.Is(err, store.ErrTooMany):
		h.render(w, r, http.StatusBadRequest, "error", v, errorPage{Title: "View not saved", Message: "You have " + strconv.Itoa(maxViews) + " saved views, the most one may keep; delete one first."})
	default:
		h.unavailable(w, r, err)
	}
}
