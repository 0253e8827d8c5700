package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/certwright/certwright/internal/web/apitypes"
)

// CreateProvisioner creates an ACME provisioner.
func (c *client) CreateProvisioner(ctx context.Context, req apitypes.CreateProvisionerRequest) (apitypes.Provisioner, error) {
	var out apitypes.Provisioner
	err := c.postJSON(ctx, "/api/v1/acme/provisioners", req, &out)
	return out, err
}

// ListProvisioners lists every ACME provisioner.
func (c *client) ListProvisioners(ctx context.Context) (apitypes.ProvisionerList, error) {
	var out apitypes.ProvisionerList
	err := c.getJSON(ctx, "/api/v1/acme/provisioners", nil, &out)
	return out, err
}

// GetProvisioner shows one ACME provisioner by name or ID.
func (c *client) GetProvisioner(ctx context.Context, name string) (apitypes.Provisioner, error) {
	var out apitypes.Provisioner
	err := c.getJSON(ctx, "/api/v1/acme/provisioners/"+seg(name), nil, &out)
	return out, err
}

// CreateEABKey makes an external account binding key for a provisioner;
// the answer is the only time its HMAC key is shown.
func (c *client) CreateEABKey(ctx context.Context, provisioner string, req apitypes.CreateEABKeyRequest) (apitypes.NewEABKey, error) {
	var out apitypes.NewEABKey
	err := c.postJSON(ctx, "/api/v1/acme/provisioners/"+seg(provisioner)+"/eab", req, &out)
	return out, err
}

// ListEABKeys lists a provisioner's external account binding keys (never their HMAC keys).
func (c *client) ListEABKeys(ctx context.Context, provisioner string) (apitypes.EABKeyList, error) {
	var out apitypes.EABKeyList
	err := c.getJSON(ctx, "/api/v1/acme/provisioners/"+seg(provisioner)+"/eab", nil, &out)
	return out, err
}

// UpdateProvisioner changes the fields of an ACME provisioner that req holds.
func (c *client) UpdateProvisioner(ctx context.Context, name string, req apitypes.UpdateProvisionerRequest) (apitypes.UpdatedProvisioner, error) {
	var out apitypes.UpdatedProvisioner
	body, err := json.Marshal(req)
	if err != nil {
		return out, fmt.Errorf("encode request: %w", err)
	}
	_, err = c.request(ctx, http.MethodPatch, "/api/v1/acme/provisioners/"+seg(name), nil, body, "application/json", &out)
	return out, err
}

// SetProvisionerState disables or enables (action) an ACME provisioner.
func (c *client) SetProvisionerState(ctx context.Context, name, action string) (apitypes.Provisioner, error) {
	var out apitypes.Provisioner
	err := c.postJSON(ctx, "/api/v1/acme/provisioners/"+seg(name)+"/"+action, nil, &out)
	return out, err
}

// DeleteProvisioner deletes a disabled ACME provisioner.
func (c *client) DeleteProvisioner(ctx context.Context, name string) (apitypes.DeletedProvisioner, error) {
	var out apitypes.DeletedProvisioner
	_, err := c.request(ctx, http.MethodDelete, "/api/v1/acme/provisioners/"+seg(name), nil, nil, "", &out)
	return out, err
}

// RevokeEABKey revokes an external account binding key.
func (c *client) RevokeEABKey(ctx context.Context, keyID string) (apitypes.RevokedEABKey, error) {
	var out apitypes.RevokedEABKey
	err := c.postJSON(ctx, "/api/v1/acme/eab/"+seg(keyID)+"/revoke", nil, &out)
	return out, err
}

// RenewNow moves the renewal window of every matching certificate to now.
func (c *client) RenewNow(ctx context.Context, req apitypes.RenewNowRequest) (apitypes.RenewNowResult, error) {
	var out apitypes.RenewNowResult
	err := c.postJSON(ctx, "/api/v1/acme/renew-now", req, &out)
	return out, err
}
