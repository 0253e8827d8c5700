package profile_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/profile"
	"github.com/certwright/certwright/internal/store/storetest"
)

// TestPersonProfile: the built-in person profile issues client
// authentication only, for e-mail addresses only, 12 hours unless asked
// for up to 24, and its certificates raise no expiry alerts.
func TestPersonProfile(t *testing.T) {
	t.Parallel()
	p, ok := profile.Builtin(profile.Person)
	if !ok {
		t.Fatal("no built-in person profile")
	}
	if p.Names.DNS.Allow || p.Names.IP.Allow || p.Names.URI.Allow || !p.Names.Email.Allow || !p.Names.RequireSAN ||
		len(p.ExtKeyUsage) != 1 || p.ExtKeyUsage[0] != "client_auth" || len(p.KeyUsage) != 1 || p.KeyUsage[0] != "digital_signature" ||
		!p.SilentExpiry || p.RequireApproval || p.AllowKeyReuse {
		t.Errorf("person profile %+v", p)
	}
	for _, tc := range []struct {
		asked time.Duration
		want  time.Duration
	}{{0, 12 * time.Hour}, {time.Hour, time.Hour}, {24 * time.Hour, 24 * time.Hour}, {24*time.Hour + time.Second, 0}, {-time.Hour, 0}} {
		got, err := p.ValidityOf(tc.asked)
		var v *profile.Violation
		switch {
		case tc.want == 0 && (!errors.As(err, &v) || v.Rule != profile.RuleMaxValidity):
			t.Errorf("ValidityOf(%s) = %s, %v; want a max_validity_days violation", tc.asked, got, err)
		case tc.want != 0 && (err != nil || got != tc.want):
			t.Errorf("ValidityOf(%s) = %s, %v; want %s", tc.asked, got, err, tc.want)
		}
	}
	if d, err := p.Validity(0); err != nil || d != 12*time.Hour {
		t.Errorf("Validity(0) = %s, %v; want the default 12h", d, err)
	}
	if d, err := p.Validity(1); err != nil || d != 24*time.Hour {
		t.Errorf("Validity(1 day) = %s, %v", d, err)
	}
}

// TestDefaultValidityHoursValidated: a default longer than the maximum,
// or negative, is refused naming the field.
func TestDefaultValidityHoursValidated(t *testing.T) {
	t.Parallel()
	for _, h := range []int{-1, 25} {
		p, _ := profile.Builtin(profile.Person)
		p.Name, p.Builtin, p.DefaultValidityHours = "short", false, h
		var fe *profile.FieldError
		if err := p.Validate(); !errors.As(err, &fe) || fe.Field != "default_validity_hours" {
			t.Errorf("default_validity_hours %d: %v", h, err)
		}
	}
}

// TestShadowedCustomProfile: a data directory from before person was
// built in may hold a custom profile of that name. The built-in one is
// served under the name (Get, and List once), and Shadowed hands back the
// custom definition so that it can be re-created under another name.
func TestShadowedCustomProfile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := storetest.OpenSQLite(t)
	old := []byte(`{"name":"person","keys":[{"algorithm":"RSA","min_bits":2048}],"max_validity_days":365,"renew_before_days":30,"ext_key_usage":["client_auth"],"names":{"email":{"allow":true}}}`)
	if err := db.CreateProfile(ctx, "person", old, audit.Event{Time: time.Now(), Principal: "admin", Action: "profile.create", Outcome: audit.Success}); err != nil {
		t.Fatal(err)
	}
	c := profile.NewCatalog(db, time.Now)
	if p, err := c.Get(ctx, "person"); err != nil || !p.Builtin || p.MaxValidityDays != 1 {
		t.Errorf("Get(person) = %+v, %v; want the built-in one", p, err)
	}
	list, err := c.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range list {
		if p.Name == "person" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("List has %d profiles named person, want 1", n)
	}
	shadowed, err := c.Shadowed(ctx)
	if err != nil || len(shadowed) != 1 || string(shadowed["person"]) != string(old) {
		t.Errorf("Shadowed = %q, %v", shadowed, err)
	}
}
