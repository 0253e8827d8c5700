package config_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/certwright/certwright/internal/config"
)

// TestACMEValidationLimits: the ACME validation fairness limits are config
// keys under acme: (strictly decoded), absent or zero means the default
// (derived from acme.workers where it depends on it), and out-of-range
// values are refused naming the key and the range.
func TestACMEValidationLimits(t *testing.T) {
	t.Parallel()
	type limits struct{ inFlight, targetInFlight, concurrent, targetConcurrency int }
	got := func(c *config.Config) limits {
		a := c.ACME
		return limits{a.ValidationsInFlight, a.TargetValidationsInFlight, a.ConcurrentValidations, a.TargetConcurrency}
	}
	for _, tc := range []struct {
		name, yaml string
		want       limits
	}{
		{"defaults", "", limits{100, 100, 2, 2}},
		{"zero means default", "acme:\n  validations_in_flight: 0\n  target_validations_in_flight: 0\n  concurrent_validations: 0\n  target_concurrency: 0\n", limits{100, 100, 2, 2}},
		{"defaults follow workers", "acme:\n  workers: 32\n", limits{100, 100, 8, 2}},
		{"one worker", "acme:\n  workers: 1\n", limits{100, 100, 1, 1}},
		{"set", "acme:\n  workers: 16\n  validations_in_flight: 10\n  target_validations_in_flight: 20\n  concurrent_validations: 3\n  target_concurrency: 16\n", limits{10, 20, 3, 16}},
		{"queue size", "acme:\n  validations_in_flight: 4096\n  target_validations_in_flight: 4096\n", limits{4096, 4096, 2, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := defaulted(t, tc.yaml)
			if err := c.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if g := got(c); g != tc.want {
				t.Errorf("limits %+v, want %+v", g, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		name, yaml, field, says string
	}{
		{"negative in-flight", "acme:\n  validations_in_flight: -1\n", "acme.validations_in_flight", "want 1 to 4096"},
		{"in-flight above the queue", "acme:\n  validations_in_flight: 4097\n", "acme.validations_in_flight", "want 1 to 4096"},
		{"negative target in-flight", "acme:\n  target_validations_in_flight: -5\n", "acme.target_validations_in_flight", "want 1 to 4096"},
		{"target in-flight above the queue", "acme:\n  target_validations_in_flight: 100000\n", "acme.target_validations_in_flight", "want 1 to 4096"},
		{"concurrency above workers", "acme:\n  workers: 4\n  concurrent_validations: 5\n", "acme.concurrent_validations", "want 1 to acme.workers (4)"},
		{"negative concurrency", "acme:\n  concurrent_validations: -1\n", "acme.concurrent_validations", "want 1 to acme.workers (8)"},
		{"target concurrency above workers", "acme:\n  target_concurrency: 9\n", "acme.target_concurrency", "want 1 to acme.workers (8)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := defaulted(t, tc.yaml).Validate()
			if !errors.Is(err, config.ErrInvalid) {
				t.Fatalf("Validate = %v, want ErrInvalid naming %s", err, tc.field)
			}
			if !strings.Contains(err.Error(), tc.field+":") || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("error %q does not name %s and say %q", err, tc.field, tc.says)
			}
		})
	}
	t.Run("strict decoding", func(t *testing.T) {
		t.Parallel()
		var c config.Config
		err := c.Decode([]byte("acme:\n  validation_in_flight: 3\n"), "test.yaml")
		if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), "validation_in_flight") {
			t.Fatalf("Decode = %v, want ErrInvalid naming the misspelt key", err)
		}
		if err := c.Decode([]byte("acme:\n  target_concurrency: two\n"), "test.yaml"); !errors.Is(err, config.ErrInvalid) {
			t.Fatalf("Decode of a non-integer = %v, want ErrInvalid", err)
		}
	})
}
