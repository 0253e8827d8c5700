package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/certwright/certwright/internal/suggest"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// nameRef is a CA, profile, job or scanned endpoint named on the
// command line.
type nameRef struct {
	kind string // "CA", "profile", "job" or "endpoint"
	name string
}

// explainNotFound adds to a 404 a hint for every named CA, profile or job
// that is not among those the caller can list: the closest valid name and
// all of them. It lists them through the API with the caller's own
// credentials, so it shows nothing the caller could not list itself (a
// caller that may not list them gets the 404 unchanged).
func (c *client) explainNotFound(ctx context.Context, err error, refs ...nameRef) error {
	var ae *apiError
	if !errors.As(err, &ae) || ae.status != http.StatusNotFound {
		return err
	}
	var hints []string
	for _, ref := range refs {
		if ref.name == "" {
			continue
		}
		names, lerr := c.visibleNames(ctx, ref.kind)
		if lerr != nil || slices.Contains(names, ref.name) {
			continue
		}
		hints = append(hints, fmt.Sprintf("there is no %s %q: %s", ref.kind, ref.name, suggest.Hint(ref.name, names)))
	}
	if len(hints) == 0 {
		return err
	}
	return &hintError{err, strings.Join(hints, "; ")}
}

// visibleNames lists the names of kind that the caller may list.
func (c *client) visibleNames(ctx context.Context, kind string) ([]string, error) {
	var names []string
	switch kind {
	case "CA":
		list, err := c.ListCAs(ctx)
		if err != nil {
			return nil, err
		}
		for _, a := range list.CAs {
			names = append(names, a.Name)
		}
	case "profile":
		list, err := c.ListProfiles(ctx)
		if err != nil {
			return nil, err
		}
		for _, p := range list.Profiles {
			if n, ok := p["name"].(string); ok {
				names = append(names, n)
			}
		}
	case "job":
		var list apitypes.JobList
		if err := c.getJSON(ctx, "/api/v1/jobs", nil, &list); err != nil {
			return nil, err
		}
		for _, j := range list.Jobs {
			names = append(names, j.Name)
		}
	case "endpoint":
		var list apitypes.EndpointList
		if err := c.getJSON(ctx, "/api/v1/scan/endpoints", url.Values{"gone": {"true"}, "limit": {"1000"}}, &list); err != nil {
			return nil, err
		}
		for _, ep := range list.Endpoints {
			names = append(names, ep.Address)
		}
	default:
		return nil, fmt.Errorf("no list of %s", kind)
	}
	return names, nil
}
