package compliance_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/compliance"
)

// TestSummarizeMatchesReport checks that the snapshot, which keeps no
// rows, says what the full report says: the same counts, KPIs and worst
// offenders, the first non-compliant rows in the report's order, and the
// weak keys and signatures counted from the rows' findings. There are
// more non-compliant rows than it keeps, so its bounded lists are trimmed.
func TestSummarizeMatchesReport(t *testing.T) {
	t.Parallel()
	e := tNewReportEnv(t)
	n := 2*compliance.SnapshotRows + 30
	for i := range n {
		// Expired within the period and not renewed: non-compliant.
		e.issue(e.ours.leaf(t, fmt.Sprintf("lapsed%d.example.internal", i), leafOpts{notBefore: tNow.Add(-time.Duration(91+i%40) * 24 * time.Hour)}), "web_server", nil)
	}
	for i := range 12 {
		e.issue(e.ours.leaf(t, fmt.Sprintf("soon%d.example.internal", i), leafOpts{notBefore: tNow.Add(-88 * 24 * time.Hour)}), "web_server", nil)
		e.issue(e.ours.leaf(t, fmt.Sprintf("fine%d.example.internal", i), leafOpts{}), "web_server", nil)
	}
	e.importPEM("weak.pem", tPEM(tLegacyCert(t, "weak.example.com", 1024, 30)))
	e.importPEM("legacy.pem", tPEM(tLegacyCert(t, "legacy.example.com", 2048, 800)))

	// A MaxRows below the inventory's size bounds Build, not Summarize.
	snap, err := e.reporter(10).Summarize(context.Background(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	rep := e.build(time.Time{})
	if !reflect.DeepEqual(snap.Summary, rep.Summary) {
		t.Errorf("summary %+v, want the report's %+v", snap.Summary, rep.Summary)
	}
	if !reflect.DeepEqual(snap.KPIs, rep.KPIs) {
		t.Errorf("KPIs %+v, want the report's %+v", snap.KPIs, rep.KPIs)
	}
	if got, want := serials(snap.WorstOffenders), serials(rep.WorstOffenders); !reflect.DeepEqual(got, want) {
		t.Errorf("worst offenders %v, want the report's %v", got, want)
	}
	var nonCompliant []*compliance.Row
	weakKeys, weakSigs := 0, 0
	for _, row := range rep.Rows {
		if row.Status == compliance.StatusNonCompliant {
			nonCompliant = append(nonCompliant, row)
		}
		if f := findingOf(row, compliance.RuleKey); f != nil {
			weakKeys++
		}
		if f := findingOf(row, compliance.RuleSignature); f != nil && f.Severity == compliance.SeverityError {
			weakSigs++
		}
	}
	if len(nonCompliant) <= compliance.SnapshotRows {
		t.Fatalf("the test needs more than %d non-compliant certificates, has %d", compliance.SnapshotRows, len(nonCompliant))
	}
	if got, want := serials(snap.NonCompliant), serials(nonCompliant[:compliance.SnapshotRows]); !reflect.DeepEqual(got, want) {
		t.Errorf("non-compliant rows %v, want the report's first %d: %v", got, compliance.SnapshotRows, want)
	}
	if weakKeys == 0 || weakSigs == 0 || snap.WeakKeys != weakKeys || snap.WeakSignatures != weakSigs {
		t.Errorf("weak keys %d, signatures %d; the report's rows have %d and %d (both must be > 0)", snap.WeakKeys, snap.WeakSignatures, weakKeys, weakSigs)
	}
	if !snap.GeneratedAt.Equal(tNow) || !snap.Until.Equal(tNow) || !snap.Since.Equal(tNow.Add(-compliance.DefaultPeriod)) {
		t.Errorf("period %s–%s generated %s", snap.Since, snap.Until, snap.GeneratedAt)
	}
}

func serials(rows []*compliance.Row) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r.Serial
	}
	return out
}
