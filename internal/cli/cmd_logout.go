package cli

import (
	"context"
	"fmt"
	"net/http"

	"github.com/certwright/certwright/internal/web/apitypes"
)

func logoutCommand() *command {
	return &command{
		name: "logout", summary: "end your sign-in: revoke the token in use and the person certificates it asked for",
		args: "[--context NAME] [--json]", example: "certwright logout",
		more: `The server revokes the token this context authenticates with (POST
/api/v1/sign-out) and, with it, the unexpired person certificates that
sign-in got with "certwright cert request --sso": they stop authenticating
to the API at once, and OCSP and CRLs list them as revoked
(cessationOfOperation). The context stays saved; "certwright login --sso"
signs in again. A context that authenticates with a client certificate
has no sign-in to end.`,
		run: runLogout,
	}
}

func runLogout(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("logout")
	c, _, err := r.open(fs, cf, args)
	if err != nil {
		return err
	}
	defer c.close()
	tok, err := c.SignOut(ctx)
	if err != nil {
		return err
	}
	if cf.json {
		return printJSON(r.stdout, tok)
	}
	_, err = fmt.Fprintf(r.stdout, "Signed out of %s: token %s of %s is revoked, with the person certificates it asked for.\n",
		c.base, tok.ID, tok.Principal)
	return err
}

// SignOut ends the sign-in of the token in use.
func (c *client) SignOut(ctx context.Context) (apitypes.Token, error) {
	var out apitypes.Token
	_, err := c.request(ctx, http.MethodPost, "/api/v1/sign-out", nil, nil, "", &out)
	return out, err
}
