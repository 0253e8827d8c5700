package config

import (
	"errors"
	"strings"
	"testing"
)

func TestScanValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		mod   func(*ScanConfig)
		field string // "" for valid
		says  string
	}{
		{"default: nothing to scan", func(*ScanConfig) {}, "", ""},
		{"targets within the allow-list", func(s *ScanConfig) {
			s.Allow = []string{"10.0.0.0/24", "db.internal"}
			s.Targets = []string{"10.0.0.0/28:443,8443", "db.internal:5432", "other.internal"}
			s.QuietHours, s.TimeZone = "22:00-06:00", "Europe/Berlin"
		}, "", ""},
		{"target outside", func(s *ScanConfig) {
			s.Allow, s.Targets = []string{"10.0.0.0/24"}, []string{"10.0.1.1:443"}
		}, "scan.targets", "10.0.1.1:443"},
		{"nothing allowed", func(s *ScanConfig) { s.Targets = []string{"10.0.0.1"} }, "scan.targets", "scan.allow is empty"},
		{"range too wide", func(s *ScanConfig) {
			s.Allow, s.Targets = []string{"10.0.0.0/8"}, []string{"10.0.0.0/16"}
		}, "scan.targets", "at most /20"},
		{"bad allow entry", func(s *ScanConfig) { s.Allow = []string{"10.0.0.0/40"} }, "scan.allow", ""},
		{"bad quiet hours", func(s *ScanConfig) { s.QuietHours = "late" }, "scan.quiet_hours", "HH:MM-HH:MM"},
		{"zone without window", func(s *ScanConfig) { s.TimeZone = "UTC" }, "scan.time_zone", ""},
		{"interval too short", func(s *ScanConfig) { s.Interval = "10s" }, "scan.interval", ""},
		{"concurrency", func(s *ScanConfig) { s.Concurrency = 5000 }, "scan.concurrency", ""},
		{"max discovered", func(s *ScanConfig) { s.MaxDiscovered = -1 }, "scan.max_discovered", "want 1 to 65536"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &Config{DataDir: t.TempDir(), HTTPSListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0", PublicHTTPURL: "http://pki.test"}
			c.Defaults()
			tc.mod(&c.Scan)
			err := c.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("Validate = %v, want an error in %s saying %q", err, tc.field, tc.says)
			}
		})
	}
}
