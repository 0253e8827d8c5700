package scep

import "testing"

// BenchmarkMessage measures the server's cost of the SCEP message layer
// of one enrolment, which API issuance does not have: reading and
// verifying the device's signed PKIMessage, decrypting its envelope with
// the RA's RSA-2048 key (RFC 8894 fixes RSA key transport), and building
// the CertRep (encrypted to the device, signed by the RA). The README's
// SCEP figures set it beside BenchmarkSCEPEnrol and BenchmarkIssueHTTPS.
func BenchmarkMessage(b *testing.B) {
	raw, r := tMessage(b)
	m, err := parseMessage(raw)
	if err != nil {
		b.Fatal(err)
	}
	// The device's certificate stands in for the one issued: the CertRep
	// carries it whatever it is.
	issued := m.signer
	b.Run("parse", func(b *testing.B) {
		for b.Loop() {
			if _, err := parseMessage(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("open", func(b *testing.B) {
		for b.Loop() {
			if _, err := m.open(r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("certRep", func(b *testing.B) {
		for b.Loop() {
			if _, err := r.certRep(m, []byte("nonce"), statusSuccess, "", issued); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("all", func(b *testing.B) {
		for b.Loop() {
			m, err := parseMessage(raw)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := m.open(r); err != nil {
				b.Fatal(err)
			}
			if _, err := r.certRep(m, []byte("nonce"), statusSuccess, "", issued); err != nil {
				b.Fatal(err)
			}
		}
	})
}
