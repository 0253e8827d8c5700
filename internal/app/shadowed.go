package app

import (
	"context"
	"log/slog"

	"github.com/certwright/certwright/internal/profile"
)

// warnShadowedProfiles says, at start, which stored custom profiles carry
// a name that is built in now (person, since single sign-on): the
// built-in profile applies under that name, so the custom one must be
// re-created under another; its definition is logged for that. A store
// that cannot list them now is not a reason to stop.
func warnShadowedProfiles(ctx context.Context, log *slog.Logger, profiles *profile.Catalog) {
	shadowed, err := profiles.Shadowed(ctx)
	if err != nil {
		log.Warn("could not check custom profiles against the built-in ones", "err", err)
		return
	}
	for name, doc := range shadowed {
		log.Warn("a stored custom profile has the name of a built-in profile, which now applies in its place;"+
			" re-create it under another name (certwright profile create) and move its role bindings and ACME provisioners to that name",
			"profile", name, "definition", string(doc))
	}
}
