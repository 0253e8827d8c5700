package cli

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/certwright/certwright/internal/web/apitypes"
)

const scepProvisioners = "/api/v1/scep/provisioners"

// SCEPProvisioner calls a SCEP provisioner route: method on
// /api/v1/scep/provisioners[/NAME[/action]] with body in (nil: none).
func (c *client) SCEPProvisioner(ctx context.Context, method, name, action string, in any) (apitypes.SCEPProvisioner, error) {
	var out apitypes.SCEPProvisioner
	path := scepProvisioners
	if name != "" {
		path += "/" + seg(name)
	}
	if action != "" {
		path += "/" + action
	}
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return out, fmt.Errorf("encode request: %w", err)
		}
	}
	ct := ""
	if body != nil {
		ct = "application/json"
	}
	_, err := c.request(ctx, method, path, nil, body, ct, &out)
	return out, err
}

// ListSCEPProvisioners lists every SCEP provisioner.
func (c *client) ListSCEPProvisioners(ctx context.Context) (apitypes.SCEPProvisionerList, error) {
	var out apitypes.SCEPProvisionerList
	err := c.getJSON(ctx, scepProvisioners, nil, &out)
	return out, err
}

// CreateSCEPChallenge makes a one-time challenge; the answer is the only
// time it is shown.
func (c *client) CreateSCEPChallenge(ctx context.Context, provisioner string, req apitypes.CreateSCEPChallengeRequest) (apitypes.SCEPChallenge, error) {
	var out apitypes.SCEPChallenge
	err := c.postJSON(ctx, scepProvisioners+"/"+seg(provisioner)+"/challenges", req, &out)
	return out, err
}
