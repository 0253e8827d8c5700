package scep

import (
	"sync"
	"time"
)

// warnInterval is how often a throttled warning is logged at most, per
// key.
const warnInterval = time.Hour

// maxWarnKeys bounds the keys a throttle remembers.
const maxWarnKeys = 4096

// throttle lets a warning that anyone can provoke (a refusal of an
// anonymous request) through at most once per warnInterval and key, and
// counts those it held back, so that nobody can flood the log, nor use
// the warning up: the next one comes an hour later with the count.
type throttle struct {
	mu   sync.Mutex
	keys map[string]*throttled
}

type throttled struct {
	at   time.Time // when the last warning was let through
	held int       // warnings held back since
}

// allow reports whether the warning for key may be logged at now and,
// if so, how many were held back since the last one. When maxWarnKeys
// keys were let through within the interval, a new key is held back
// (uncounted) until some age.
func (t *throttle) allow(key string, now time.Time) (ok bool, held int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.keys == nil {
		t.keys = map[string]*throttled{}
	}
	if k, seen := t.keys[key]; seen {
		if now.Sub(k.at) < warnInterval {
			k.held++
			return false, 0
		}
		held = k.held
		k.at, k.held = now, 0
		return true, held
	}
	if len(t.keys) >= maxWarnKeys {
		for key, k := range t.keys {
			if now.Sub(k.at) >= warnInterval {
				delete(t.keys, key)
			}
		}
		if len(t.keys) >= maxWarnKeys {
			return false, 0
		}
	}
	t.keys[key] = &throttled{at: now}
	return true, 0
}
