package profile

import (
	"crypto/x509"
	"errors"
	"slices"
	"strings"
	"testing"
)

// TestParseRefusesResponderAndTimeStampingEKU: a profile can never carry
// ocsp_signing (a leaf with it is a delegated OCSP responder for its CA),
// and carries time_stamping only with allow_time_stamping and alone. The
// error names the field as "ext_key_usage: <eku>", in JSON and YAML alike.
func TestParseRefusesResponderAndTimeStampingEKU(t *testing.T) {
	t.Parallel()
	eku := func(doc, repl string) string {
		return strings.Replace(doc, "server_auth", repl, 1)
	}
	tests := []struct {
		name, in, field string
	}{
		{"yaml ocsp_signing", eku(minimalYAML, "server_auth, ocsp_signing"), "ext_key_usage: ocsp_signing"},
		{"yaml OCSP_Signing", eku(minimalYAML, "OCSP_Signing"), "ext_key_usage: ocsp_signing"},
		{"json ocsp_signing", eku(minimalJSON, `ocsp_signing`), "ext_key_usage: ocsp_signing"},
		{"ocsp_signing with allow_time_stamping", eku(minimalYAML, "ocsp_signing") + "allow_time_stamping: true\n", "ext_key_usage: ocsp_signing"},
		{"time_stamping without opt-in", eku(minimalYAML, "time_stamping"), "ext_key_usage: time_stamping"},
		{"json time_stamping without opt-in", eku(minimalJSON, "time_stamping"), "ext_key_usage: time_stamping"},
		{"time_stamping with others", eku(minimalYAML, "server_auth, time_stamping") + "allow_time_stamping: true\n", "ext_key_usage: time_stamping"},
		{"opt-in without time_stamping", minimalYAML + "allow_time_stamping: true\n", "allow_time_stamping"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.in))
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field {
				t.Fatalf("Parse = %v, want a *FieldError for %q", err, tt.field)
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Errorf("error %q does not name %q", err, tt.field)
			}
		})
	}
	// A dedicated time-stamping profile is accepted and yields only that EKU.
	p, err := Parse([]byte(eku(minimalYAML, "time_stamping") + "allow_time_stamping: true\n"))
	if err != nil {
		t.Fatalf("time-stamping profile: %v", err)
	}
	if _, got := p.Usages(rsaPub(2048)); !slices.Equal(got, []x509.ExtKeyUsage{x509.ExtKeyUsageTimeStamping}) {
		t.Errorf("time-stamping profile EKU = %v", got)
	}
}

// TestUsagesNeverEmitsOCSPSigning: even a profile built in code without
// Validate never yields an issuable OCSPSigning: CheckIssuableEKU (the
// issuance backstop) refuses what Usages derives from it, naming the field.
func TestUsagesNeverEmitsOCSPSigning(t *testing.T) {
	t.Parallel()
	p := mustBuiltin(t, "web_server")
	p.ExtKeyUsage = []string{"server_auth", "ocsp_signing", "time_stamping"}
	_, got := p.Usages(rsaPub(2048))
	var fe *FieldError
	if err := CheckIssuableEKU(got, p.AllowTimeStamping); !errors.As(err, &fe) || fe.Field != "ext_key_usage: ocsp_signing" {
		t.Errorf("CheckIssuableEKU(Usages %v) = %v, want a refusal naming ext_key_usage: ocsp_signing", got, err)
	}
	p.ExtKeyUsage = []string{"server_auth", "time_stamping"}
	if _, got = p.Usages(rsaPub(2048)); CheckIssuableEKU(got, p.AllowTimeStamping) == nil {
		t.Errorf("CheckIssuableEKU(Usages %v) accepted time_stamping without allow_time_stamping", got)
	}
	if err := CheckIssuableEKU([]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageOCSPSigning}, true); !errors.As(err, &fe) || fe.Field != "ext_key_usage: ocsp_signing" {
		t.Errorf("CheckIssuableEKU(OCSPSigning) = %v", err)
	}
	if err := CheckIssuableEKU([]x509.ExtKeyUsage{x509.ExtKeyUsageTimeStamping}, false); !errors.As(err, &fe) {
		t.Errorf("CheckIssuableEKU(TimeStamping, not allowed) = %v", err)
	}
	if err := CheckIssuableEKU([]x509.ExtKeyUsage{x509.ExtKeyUsageTimeStamping}, true); err != nil {
		t.Errorf("CheckIssuableEKU(TimeStamping, allowed) = %v", err)
	}
}
