package report

import (
	"github.com/certwright/certwright/internal/discovery"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// ScanKPIsView is the wire form of the scanned endpoints' encryption KPIs
// (the API's /scan/kpis and the compliance report's Encryption).
func ScanKPIsView(k *discovery.KPIs) apitypes.ScanKPIs {
	out := apitypes.ScanKPIs{
		GeneratedAt: k.GeneratedAt, Endpoints: k.Endpoints, Gone: k.Gone, ByEncryption: map[string]int{},
		Encrypted: k.Encrypted, EncryptionKnown: k.EncryptionKnown, EncryptedShare: k.EncryptedShare,
		TLS12Only: k.TLS12Only, TLS12Known: k.TLS12Known, TLS12OnlyShare: k.TLS12OnlyShare,
		StrongOnly: k.StrongOnly, StrongKnown: k.StrongKnown, StrongOnlyShare: k.StrongOnlyShare,
		Grades: k.Grades, Exposed: k.Exposed, Remediated: k.Remediated, MeanTimeToRemediate: k.MeanTimeToRemediate,
		Unmanaged: k.Unmanaged, ByStatus: map[string]int{},
	}
	for e, n := range k.ByEncryption {
		out.ByEncryption[string(e)] = n
	}
	for s, n := range k.ByStatus {
		out.ByStatus[string(s)] = n
	}
	return out
}
