package config_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/certwright/certwright/internal/config"
)

// TestACMESourceValidationsInFlight: acme.source_validations_in_flight is
// a strictly decoded key, absent or zero means 200, and values outside
// 1 to the queue's size are refused naming the key and the range.
func TestACMESourceValidationsInFlight(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, yaml string
		want       int
	}{
		{"default", "", 200},
		{"zero means default", "acme:\n  source_validations_in_flight: 0\n", 200},
		{"set", "acme:\n  source_validations_in_flight: 7\n", 7},
		{"queue size", "acme:\n  source_validations_in_flight: 4096\n", 4096},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := defaulted(t, tc.yaml)
			if err := c.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if got := c.ACME.SourceValidationsInFlight; got != tc.want {
				t.Errorf("source_validations_in_flight %d, want %d", got, tc.want)
			}
		})
	}
	for _, tc := range []struct{ name, yaml string }{
		{"negative", "acme:\n  source_validations_in_flight: -1\n"},
		{"above the queue", "acme:\n  source_validations_in_flight: 4097\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := defaulted(t, tc.yaml).Validate()
			if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), "acme.source_validations_in_flight:") || !strings.Contains(err.Error(), "want 1 to 4096") {
				t.Fatalf("Validate = %v, want ErrInvalid naming acme.source_validations_in_flight and the range", err)
			}
		})
	}
	var c config.Config
	if err := c.Decode([]byte("acme:\n  sources_validations_in_flight: 3\n"), "test.yaml"); !errors.Is(err, config.ErrInvalid) {
		t.Fatalf("Decode of a misspelt key = %v, want ErrInvalid", err)
	}
}
