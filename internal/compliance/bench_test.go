package compliance_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/compliance"
	"github.com/certwright/certwright/internal/store/storetest"
)

// BenchmarkImport1000 imports one bundle of 1000 leaves (the most one
// import may hold) into a fresh SQLite store, in one transaction.
func BenchmarkImport1000(b *testing.B) {
	ca := tRoot(b, "Bench Root")
	var bundle bytes.Buffer
	for range compliance.MaxImportCertificates {
		bundle.Write(tPEM(ca.leaf(b, "bench.example.com", leafOpts{})))
	}
	for b.Loop() {
		b.StopTimer()
		st := storetest.OpenSQLite(b)
		im, err := compliance.NewImporter(st, fakeClock(), tLog())
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		res, err := im.Import(context.Background(), compliance.ImportRequest{Principal: tImporter(),
			Files: []compliance.ImportFile{{Name: "bundle.pem", Data: bundle.Bytes()}}})
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Imported) != compliance.MaxImportCertificates {
			b.Fatalf("imported %d", len(res.Imported))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*compliance.MaxImportCertificates), "µs/cert")
}

// BenchmarkReport1000 builds the report over 1000 imported certificates
// (zlint, chain and policy checks on each).
func BenchmarkReport1000(b *testing.B) {
	st := storetest.OpenSQLite(b)
	ca := tRoot(b, "Bench Root")
	var bundle bytes.Buffer
	for range 1000 {
		bundle.Write(tPEM(ca.leaf(b, "bench.example.com", leafOpts{})))
	}
	im, err := compliance.NewImporter(st, fakeClock(), tLog())
	if err != nil {
		b.Fatal(err)
	}
	if _, err := im.Import(context.Background(), compliance.ImportRequest{Principal: tImporter(),
		Files: []compliance.ImportFile{{Name: "bundle.pem", Data: bundle.Bytes()}}}); err != nil {
		b.Fatal(err)
	}
	r := tReporter(b, st, fakeClock(), nil, 0)
	for b.Loop() {
		rep, err := r.Build(context.Background(), time.Time{})
		if err != nil {
			b.Fatal(err)
		}
		if len(rep.Rows) != 1000 {
			b.Fatalf("%d rows", len(rep.Rows))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*1000), "µs/cert")
}
