package compliance

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/inventory"
)

// SnapshotRows bounds the non-compliant certificates a Snapshot keeps.
const SnapshotRows = 100

// Snapshot is a compliance report without its rows: the counts, the KPIs,
// the worst offenders and the SnapshotRows non-compliant certificates that
// expire soonest. Unlike a Report it is built at any inventory size (the
// rows are counted and dropped, not kept), so a job can build it and a
// page can show the last one at once.
type Snapshot struct {
	Since       time.Time `json:"since"`
	Until       time.Time `json:"until"`
	GeneratedAt time.Time `json:"generated_at"`
	// Took is how long building it took.
	Took    time.Duration `json:"took"`
	Summary Summary       `json:"summary"`
	KPIs    KPIs          `json:"kpis"`
	// WeakKeys are the certificates whose key fails policy (RuleKey);
	// WeakSignatures those signed with a refused algorithm
	// (RuleSignature, as an error).
	WeakKeys       int    `json:"weak_keys"`
	WeakSignatures int    `json:"weak_signatures"`
	WorstOffenders []*Row `json:"worst_offenders"`
	// NonCompliant are the first SnapshotRows non-compliant rows, soonest
	// to expire first; Summary.NonCompliant says how many there are.
	NonCompliant []*Row `json:"non_compliant"`
}

// Summarize measures what Build measures, over any number of
// certificates, and keeps only the snapshot: memory stays bounded
// whatever the inventory's size. A zero since means DefaultPeriod ago.
func (r *Reporter) Summarize(ctx context.Context, since time.Time) (*Snapshot, error) {
	env, err := r.prepare(ctx, since)
	if err != nil {
		return nil, err
	}
	t := newTally(SnapshotRows)
	if err := r.evaluateEach(ctx, env, 0, func(_ int, row *Row) { t.add(row) }); err != nil {
		return nil, fmt.Errorf("compliance: summary: %w", err)
	}
	if err := r.finish(ctx, env, t); err != nil {
		return nil, err
	}
	s := &Snapshot{Since: env.since, Until: env.now, GeneratedAt: env.now, Took: r.cfg.Clock.Now().Sub(env.now),
		Summary: t.summary, KPIs: t.kpis, WeakKeys: t.weakKeys, WeakSignatures: t.weakSignatures,
		WorstOffenders: t.worst, NonCompliant: t.nonCompliant}
	r.cfg.Log.Info("compliance summary built", "certificates", s.Summary.Total, "non_compliant", s.Summary.NonCompliant,
		"weak_keys", s.WeakKeys, "took", s.Took)
	return s, nil
}

// tally adds up rows one at a time, in any order: the counts by status
// and source, the current and auto-managed certificates, the weak keys
// and signatures, and the rows worth listing — the worst offenders and
// (keep > 0) the keep non-compliant rows that expire soonest.
type tally struct {
	summary        Summary
	bySource       map[inventory.Source]*Counts
	kpis           KPIs
	weakKeys       int
	weakSignatures int
	worst          []*Row
	keep           int
	nonCompliant   []*Row
}

func newTally(keep int) *tally {
	return &tally{bySource: map[inventory.Source]*Counts{}, keep: keep, worst: []*Row{}, nonCompliant: []*Row{}}
}

// worseFirst orders rows that are not compliant: non-compliant first,
// then the soonest to expire (then by serial, so the order is total).
func worseFirst(a, b *Row) int {
	return cmp.Or(cmp.Compare(a.Status.rank(), b.Status.rank()), a.NotAfter.Compare(b.NotAfter), strings.Compare(a.Serial, b.Serial))
}

// soonerFirst is the report's row order: soonest to expire first.
func soonerFirst(a, b *Row) int {
	return cmp.Or(a.NotAfter.Compare(b.NotAfter), strings.Compare(a.Serial, b.Serial))
}

// keepFirst adds row to rows and, once they are twice n, keeps the n first
// in order (a bounded top-n; trimmed to n by trim).
func keepFirst(rows []*Row, row *Row, n int, order func(a, b *Row) int) []*Row {
	rows = append(rows, row)
	if len(rows) >= 2*n {
		rows = trim(rows, n, order)
	}
	return rows
}

func trim(rows []*Row, n int, order func(a, b *Row) int) []*Row {
	slices.SortFunc(rows, order)
	clear(rows[min(n, len(rows)):])
	return rows[:min(n, len(rows))]
}

func (t *tally) add(row *Row) {
	t.summary.add(row.Status)
	sc := t.bySource[row.Source]
	if sc == nil {
		sc = &Counts{}
		t.bySource[row.Source] = sc
	}
	sc.add(row.Status)
	if !row.Expired {
		t.kpis.CurrentCertificates++
		if row.AutoManaged {
			t.kpis.AutoManaged++
		}
	}
	for _, f := range row.Findings {
		switch {
		case f.Rule == RuleKey:
			t.weakKeys++
		case f.Rule == RuleSignature && f.Severity == SeverityError:
			t.weakSignatures++
		}
	}
	if row.Status != StatusCompliant {
		t.worst = keepFirst(t.worst, row, WorstOffenderCount, worseFirst)
	}
	if row.Status == StatusNonCompliant && t.keep > 0 {
		t.nonCompliant = keepFirst(t.nonCompliant, row, t.keep, soonerFirst)
	}
}

// finish sorts and cuts the kept rows and computes the KPIs from the
// period's renewal figures.
func (t *tally) finish(stats RenewalStats, incidents int) {
	t.summary.BySource = []SourceCounts{}
	for src, c := range t.bySource {
		t.summary.BySource = append(t.summary.BySource, SourceCounts{Source: src, Counts: *c})
	}
	slices.SortFunc(t.summary.BySource, func(a, b SourceCounts) int { return strings.Compare(string(a.Source), string(b.Source)) })
	t.worst = trim(t.worst, WorstOffenderCount, worseFirst)
	if t.keep > 0 {
		t.nonCompliant = trim(t.nonCompliant, t.keep, soonerFirst)
	}
	k := &t.kpis
	k.RenewalAttempts, k.RenewalsSucceeded = stats.Attempts, stats.Succeeded
	k.RenewalSuccessRate = ratio(stats.Succeeded, stats.Attempts)
	for kind, n := range stats.SucceededByKind {
		if kind.Automated() {
			k.AutomatedRenewals += n
		}
	}
	k.AutomationRate = ratio(k.AutomatedRenewals, stats.Succeeded)
	k.AutoManagedShare = ratio(k.AutoManaged, k.CurrentCertificates)
	k.ExpiryIncidents = incidents
	k.NearMisses = stats.NearMisses
}
