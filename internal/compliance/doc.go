// Package compliance owns how the inventory is measured against policy:
// importing certificates issued elsewhere (Importer) so that their expiry
// and strength are watched like our own, and the compliance report
// (Reporter) that grades every certificate — key, signature algorithm,
// validity, expiry, chain, zlint — and computes the renewal KPIs.
//
// Imported certificates keep their keys where they are: a file holding a
// private key is refused (ParseBundle, ValidateImport), and nothing of an
// import is stored unless all of it is acceptable.
package compliance
