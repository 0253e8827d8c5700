package cli

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"time"

	"github.com/certwright/certwright/internal/acme"
)

// renewalInfo is the RFC 9773 renewalInfo resource.
type renewalInfo struct {
	SuggestedWindow struct {
		Start time.Time `json:"start"`
		End   time.Time `json:"end"`
	} `json:"suggestedWindow"`
	ExplanationURL string `json:"explanationURL,omitempty"`
}

// runACMERenewalInfo shows the renewal window ACME clients are told for a
// certificate: what an ARI-aware client sees at its next check.
func runACMERenewalInfo(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("acme renewal-info")
	prov := fs.String("provisioner", "default", "ACME provisioner whose directory to ask")
	c, pos, err := r.open(fs, cf, args, "CERT.pem")
	if err != nil {
		return err
	}
	defer c.close()
	data, err := os.ReadFile(pos[0])
	if err != nil {
		return r.usagef("%v", err)
	}
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "CERTIFICATE" {
		return r.usagef("%s: no PEM certificate (the first block must be CERTIFICATE)", pos[0])
	}
	leaf, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return r.usagef("%s: %v", pos[0], err)
	}
	id := acme.CertID(leaf)
	var info renewalInfo
	if err := c.getJSON(ctx, "/acme/"+seg(*prov)+"/renewal-info/"+id, nil, &info); err != nil {
		return err
	}
	if cf.json {
		return printJSON(r.stdout, info)
	}
	now := time.Now()
	fmt.Fprintf(r.stdout, "certificate ID:   %s\n", id)
	fmt.Fprintf(r.stdout, "window start:     %s\n", info.SuggestedWindow.Start.UTC().Format(time.RFC3339))
	fmt.Fprintf(r.stdout, "window end:       %s\n", info.SuggestedWindow.End.UTC().Format(time.RFC3339))
	if info.SuggestedWindow.Start.After(now) {
		fmt.Fprintf(r.stdout, "renew:            not yet (window opens in %s)\n", info.SuggestedWindow.Start.Sub(now).Round(time.Minute))
	} else {
		fmt.Fprintln(r.stdout, "renew:            now (the window has opened)")
	}
	if info.ExplanationURL != "" {
		fmt.Fprintf(r.stdout, "explanation:      %s\n", info.ExplanationURL)
	}
	return nil
}
