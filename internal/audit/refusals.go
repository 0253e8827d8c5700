package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/certwright/certwright/internal/clock"
)

// ActionUnauthenticated is the action of the events that count refused
// anonymous requests, one per source and minute.
const ActionUnauthenticated = "api.unauthenticated"

// Refusal is one request refused before it was authenticated: no
// credential, a bad one, a credential in the URL, or too many such
// refusals from its source.
type Refusal struct {
	Source string // the client's address
	Action string // the route's audit action
	Path   string
	Status int
	Reason string
}

// Appender appends audit events that record no other change.
type Appender interface {
	AppendAudit(ctx context.Context, evs ...Event) error
}

// RefusalCounterConfig configures a RefusalCounter; zero values take the
// defaults.
type RefusalCounterConfig struct {
	Clock clock.Clock  // nil: the system clock
	Log   *slog.Logger // nil: discard
	// MaxSources bounds the sources counted one by one in a minute
	// (default 1000); refusals from further sources that minute are
	// counted together under the source "other".
	MaxSources int
	// MaxPending bounds the minutes kept while they cannot be written
	// (default 60); older ones are dropped, with an error logged.
	MaxPending int
	// Flush is how often Run writes the minutes that have ended
	// (default 10s).
	Flush time.Duration
}

// Defaults for RefusalCounterConfig, and the bounds of what one event
// holds.
const (
	DefaultRefusalSources = 1000
	DefaultRefusalPending = 60
	DefaultRefusalFlush   = 10 * time.Second
	// OtherSources is the source under which refusals from sources past
	// MaxSources are counted.
	OtherSources = "other"
	// refusalKeys bounds each breakdown (reasons, routes, paths) of one
	// event; the rest is counted under "other".
	refusalKeys = 8
	// refusalKeyLen bounds a reason or path kept in a breakdown.
	refusalKeyLen = 200
)

// RefusalCounter turns refused anonymous requests into audit events that
// stay bounded however many there are: one event per source and minute
// with the count and a bounded breakdown by status, reason, route and
// path, and at most MaxSources+1 events a minute. Nothing is written per
// request, so a client cannot grow the append-only log at its own pace.
// It is safe for concurrent use.
type RefusalCounter struct {
	cfg RefusalCounterConfig
	st  Appender

	mu      sync.Mutex
	minutes map[int64]*refusalMinute // by Unix minute
}

type refusalMinute struct {
	bySource map[string]*refusalBucket
	other    *refusalBucket
}

type refusalBucket struct {
	count       int64
	first, last time.Time
	statuses    map[string]int64
	reasons     map[string]int64
	routes      map[string]int64
	paths       map[string]int64
	path        string // the first one, the event's target
}

// NewRefusalCounter returns a counter that writes its events to st.
func NewRefusalCounter(cfg RefusalCounterConfig, st Appender) (*RefusalCounter, error) {
	if st == nil {
		return nil, errors.New("audit: refusal counter: no store")
	}
	if cfg.MaxSources < 0 || cfg.MaxPending < 0 || cfg.Flush < 0 {
		return nil, fmt.Errorf("audit: refusal counter: negative setting (sources %d, pending %d, flush %s)", cfg.MaxSources, cfg.MaxPending, cfg.Flush)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxSources == 0 {
		cfg.MaxSources = DefaultRefusalSources
	}
	if cfg.MaxPending == 0 {
		cfg.MaxPending = DefaultRefusalPending
	}
	if cfg.Flush == 0 {
		cfg.Flush = DefaultRefusalFlush
	}
	cfg.Log = cfg.Log.With("component", "audit.refusals")
	return &RefusalCounter{cfg: cfg, st: st, minutes: map[int64]*refusalMinute{}}, nil
}

// Add counts r in its source's bucket of the current minute.
func (c *RefusalCounter) Add(r Refusal) {
	now := c.cfg.Clock.Now().UTC()
	minute := now.Unix() / 60
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.minutes[minute]
	if m == nil {
		c.dropOld()
		m = &refusalMinute{bySource: map[string]*refusalBucket{}}
		c.minutes[minute] = m
	}
	b := m.bySource[r.Source]
	if b == nil {
		if len(m.bySource) < c.cfg.MaxSources {
			b = &refusalBucket{}
			m.bySource[r.Source] = b
		} else {
			if m.other == nil {
				m.other = &refusalBucket{}
			}
			b = m.other
		}
	}
	b.add(now, r)
}

// dropOld makes room for a new minute when MaxPending are kept.
func (c *RefusalCounter) dropOld() {
	for len(c.minutes) >= c.cfg.MaxPending {
		oldest := int64(0)
		first := true
		for k := range c.minutes {
			if first || k < oldest {
				oldest, first = k, false
			}
		}
		var n int64
		for _, b := range c.minutes[oldest].buckets() {
			n += b.count
		}
		delete(c.minutes, oldest)
		c.cfg.Log.Error("refused requests not recorded: the audit log could not be written for too long",
			"minute", time.Unix(oldest*60, 0).UTC(), "requests", n)
	}
}

func (m *refusalMinute) buckets() []*refusalBucket {
	out := make([]*refusalBucket, 0, len(m.bySource)+1)
	for _, b := range m.bySource {
		out = append(out, b)
	}
	if m.other != nil {
		out = append(out, m.other)
	}
	return out
}

func (b *refusalBucket) add(now time.Time, r Refusal) {
	if b.count == 0 {
		b.first = now
		b.path = r.Path
		b.statuses, b.reasons, b.routes, b.paths = map[string]int64{}, map[string]int64{}, map[string]int64{}, map[string]int64{}
	}
	b.count++
	b.last = now
	countKey(b.statuses, strconv.Itoa(r.Status))
	countKey(b.reasons, r.Reason)
	countKey(b.routes, r.Action)
	countKey(b.paths, r.Path)
}

// countKey counts k in m, keeping at most refusalKeys keys besides "other".
func countKey(m map[string]int64, k string) {
	k = truncateUTF8(k, refusalKeyLen)
	if _, ok := m[k]; !ok && len(m) >= refusalKeys {
		k = "other"
	}
	m[k]++
}

// Flush writes the minutes that have ended (all of them when all is set,
// as at shutdown) as one transaction of events, sources in order. Minutes
// it could not write stay for the next call.
func (c *RefusalCounter) Flush(ctx context.Context, all bool) error {
	now := c.cfg.Clock.Now().UTC()
	current := now.Unix() / 60
	c.mu.Lock()
	var keys []int64
	for k := range c.minutes {
		if all || k < current {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	taken := make(map[int64]*refusalMinute, len(keys))
	for _, k := range keys {
		taken[k] = c.minutes[k]
		delete(c.minutes, k)
	}
	c.mu.Unlock()
	if len(keys) == 0 {
		return nil
	}
	var evs []Event
	for _, k := range keys {
		m := taken[k]
		sources := make([]string, 0, len(m.bySource))
		for s := range m.bySource {
			sources = append(sources, s)
		}
		slices.Sort(sources)
		for _, s := range sources {
			evs = append(evs, m.bySource[s].event(now, k, s, false))
		}
		if m.other != nil {
			evs = append(evs, m.other.event(now, k, OtherSources, true))
		}
	}
	if err := c.st.AppendAudit(ctx, evs...); err != nil {
		c.mu.Lock()
		for _, k := range keys {
			if cur := c.minutes[k]; cur != nil {
				taken[k].merge(cur)
			}
			c.minutes[k] = taken[k]
		}
		c.dropOld()
		c.mu.Unlock()
		return fmt.Errorf("audit: record refused requests: %w", err)
	}
	var requests int64
	for _, k := range keys {
		for _, b := range taken[k].buckets() {
			requests += b.count
		}
	}
	c.cfg.Log.Warn("refused unauthenticated API requests recorded", "requests", requests, "events", len(evs),
		"minutes", len(keys), "first_source", evs[0].Source)
	return nil
}

// merge adds the buckets of o (counted after m was taken) into m.
func (m *refusalMinute) merge(o *refusalMinute) {
	for s, b := range o.bySource {
		if mb := m.bySource[s]; mb != nil {
			mb.merge(b)
		} else {
			m.bySource[s] = b
		}
	}
	if o.other != nil {
		if m.other == nil {
			m.other = o.other
		} else {
			m.other.merge(o.other)
		}
	}
}

func (b *refusalBucket) merge(o *refusalBucket) {
	if o.count == 0 {
		return
	}
	if b.count == 0 {
		*b = *o
		return
	}
	b.count += o.count
	b.first, b.last = minTime(b.first, o.first), maxTime(b.last, o.last)
	for _, p := range []struct{ dst, src map[string]int64 }{{b.statuses, o.statuses}, {b.reasons, o.reasons}, {b.routes, o.routes}, {b.paths, o.paths}} {
		for k, n := range p.src {
			if _, ok := p.dst[k]; !ok && len(p.dst) >= refusalKeys {
				k = "other"
			}
			p.dst[k] += n
		}
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func (b *refusalBucket) event(now time.Time, minute int64, source string, other bool) Event {
	start := time.Unix(minute*60, 0).UTC()
	details := map[string]any{
		"count": b.count, "window_start": start, "window_end": start.Add(time.Minute),
		"first_seen": b.first, "last_seen": b.last,
		"statuses": b.statuses, "reasons": b.reasons, "routes": b.routes, "paths": b.paths,
	}
	if other {
		details["note"] = "sources beyond the per-minute limit, counted together"
	}
	ev := New(anonymous(source), now, ActionUnauthenticated, b.path, details)
	ev.Outcome = Denied
	return ev
}

// Run writes the minutes that have ended every Flush until ctx ends,
// then writes what is left (bounded by a short timeout of its own).
func (c *RefusalCounter) Run(ctx context.Context) {
	t := time.NewTicker(c.cfg.Flush)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalTimeout)
			if err := c.Flush(fctx, true); err != nil {
				c.cfg.Log.Error("final write of refused requests", "err", err)
			}
			cancel()
			return
		case <-t.C:
			if err := c.Flush(ctx, false); err != nil && ctx.Err() == nil {
				c.cfg.Log.Error("write refused requests; will retry", "err", err)
			}
		}
	}
}
