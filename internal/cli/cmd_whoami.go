package cli

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/certwright/certwright/internal/web/apitypes"
)

func whoamiCommand() *command {
	return &command{
		name: "whoami", summary: "show who the server takes you for: principal, roles, permissions and the credential in use",
		args: "[--context NAME] [--json]", example: "certwright whoami",
		run: runWhoami,
	}
}

func runWhoami(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("whoami")
	if _, err := r.parse(fs, args); err != nil {
		return err
	}
	ep, err := r.discover(cf)
	if err != nil {
		return err
	}
	c := newClient(ep)
	defer c.close()
	who, err := c.Whoami(ctx)
	if err != nil {
		return err
	}
	if cf.json {
		return printJSON(r.stdout, who)
	}
	f := newFields(r.stdout)
	f.add("Principal", fmt.Sprintf("%s (%s, id %s)", who.Name, who.Kind, who.ID))
	f.add("Server", ep.server.String()+" (from "+ep.from+")")
	f.add("Credential", credentialText(who))
	f.add("Roles", rolesText(who))
	perms := strings.Join(who.Permissions, ", ")
	if perms == "" {
		perms = "none"
	}
	f.add("Permissions", perms)
	return f.flush()
}

// Whoami describes the caller.
func (c *client) Whoami(ctx context.Context) (apitypes.Whoami, error) {
	var out apitypes.Whoami
	_, err := c.request(ctx, http.MethodGet, "/api/v1/whoami", nil, nil, "", &out)
	return out, err
}

// credentialText says how a whoami caller authenticated and until when.
func credentialText(w apitypes.Whoami) string {
	var s string
	switch w.AuthMethod {
	case "token":
		s = "token " + w.TokenID
		if provider, ok := strings.CutPrefix(w.Via, "oidc:"); ok {
			s += " from a sign-in through " + provider
		}
	case "client_certificate":
		s = "client certificate " + w.CertificateSerial
	default:
		s = w.Auth
	}
	if w.ExpiresAt != nil {
		return s + ", expires " + showTime(*w.ExpiresAt)
	}
	return s + ", does not expire"
}

// rolesText lists a whoami's roles with their scopes ("" when none).
func rolesText(w apitypes.Whoami) string {
	roles := make([]string, 0, len(w.Bindings))
	for _, b := range w.Bindings {
		roles = append(roles, b.Role+" on "+scopeString(b.Scope))
	}
	return strings.Join(roles, "; ")
}
