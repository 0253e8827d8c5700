package inventory

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseWindow reads a time window such as the --expiring-within filter. It
// accepts a whole number of weeks or days ("2w", "30d") or
// anything time.ParseDuration accepts ("12h", "90m"); negative and zero
// durations are errors.
func ParseWindow(s string) (time.Duration, error) {
	bad := fmt.Errorf("%q is not a duration like 30d, 2w or 12h", s)
	t := strings.TrimSpace(s)
	unit := time.Duration(0)
	if n, ok := strings.CutSuffix(t, "d"); ok {
		t, unit = n, 24*time.Hour
	} else if n, ok := strings.CutSuffix(t, "w"); ok {
		t, unit = n, 7*24*time.Hour
	}
	if unit != 0 {
		v, err := strconv.Atoi(t)
		if err != nil || v <= 0 || time.Duration(v) > 100*365*24*time.Hour/unit {
			return 0, bad
		}
		return time.Duration(v) * unit, nil
	}
	d, err := time.ParseDuration(t)
	if err != nil || d <= 0 {
		return 0, bad
	}
	return d, nil
}

// FormatWindow renders d the way ParseWindow reads it: whole days as "Nd", anything else as a Go duration.
func FormatWindow(d time.Duration) string {
	const day = 24 * time.Hour
	if d%day == 0 {
		return strconv.FormatInt(int64(d/day), 10) + "d"
	}
	return d.String()
}
