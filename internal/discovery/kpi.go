package discovery

import (
	"math"
	"slices"
	"time"

	"github.com/certwright/certwright/internal/inventory"
)

// KPIs are the encryption figures of the endpoints the scans know, as
// of their latest observations. Shares are 0 to 1 over the endpoints
// for which the figure is known (its Known count); NaN never appears:
// a share with nothing known is 0.
type KPIs struct {
	GeneratedAt time.Time `json:"generated_at"`
	// Endpoints counts those reachable at their last scan or not yet
	// gone; Gone those that disappeared.
	Endpoints int `json:"endpoints"`
	Gone      int `json:"gone"`
	// ByEncryption counts Endpoints by encryption (every value present).
	ByEncryption map[Encryption]int `json:"by_encryption"`
	// Encrypted are those with implicit TLS or mandatory STARTTLS, out of
	// EncryptionKnown (all but unknown).
	Encrypted       int     `json:"encrypted"`
	EncryptionKnown int     `json:"encryption_known"`
	EncryptedShare  float64 `json:"encrypted_share"`
	// TLS12Only: TLS endpoints accepting nothing older than TLS 1.2.
	TLS12Only      int     `json:"tls12_only"`
	TLS12Known     int     `json:"tls12_known"`
	TLS12OnlyShare float64 `json:"tls12_only_share"`
	// StrongOnly: TLS endpoints accepting only strong cipher suites.
	StrongOnly      int     `json:"strong_only"`
	StrongKnown     int     `json:"strong_known"`
	StrongOnlyShare float64 `json:"strong_only_share"`
	// Grades counts graded endpoints by letter.
	Grades map[string]int `json:"grades"`
	// Exposed are the endpoints plaintext or weak now.
	Exposed int `json:"exposed"`
	// Remediated counts the exposures ended in the history kept;
	// MeanTimeToRemediate is their mean length (detection to
	// remediation), in seconds.
	Remediated          int     `json:"remediated"`
	MeanTimeToRemediate float64 `json:"mean_time_to_remediate_seconds"`
	// Unmanaged counts the distinct certificates served that only the
	// scans know (source discovered); ByStatus counts endpoints by the
	// reconciliation of their served certificate.
	Unmanaged int            `json:"unmanaged_certificates"`
	ByStatus  map[Status]int `json:"by_status"`
}

// ComputeKPIs computes the KPIs of eps, with the remediation time from
// the remediated events among evs.
func ComputeKPIs(eps []*Endpoint, evs []Event, now time.Time) KPIs {
	k := KPIs{GeneratedAt: now.UTC(), ByEncryption: map[Encryption]int{}, Grades: map[string]int{}, ByStatus: map[Status]int{}}
	for _, e := range Encryptions() {
		k.ByEncryption[e] = 0
	}
	unmanaged := map[string]bool{}
	for _, ep := range eps {
		if ep.Gone {
			k.Gone++
			continue
		}
		o := &ep.Latest
		k.Endpoints++
		enc := o.Encryption
		if !slices.Contains(Encryptions(), enc) {
			enc = EncUnknown
		}
		k.ByEncryption[enc]++
		if enc != EncUnknown {
			k.EncryptionKnown++
			if enc.Encrypted() {
				k.Encrypted++
			}
		}
		if only, known := o.TLS12Only(); known {
			k.TLS12Known++
			if only {
				k.TLS12Only++
			}
		}
		if enc.Encrypted() || enc == EncOptional {
			if strong, known := o.StrongOnly(); known {
				k.StrongKnown++
				if strong {
					k.StrongOnly++
				}
			}
		}
		if o.Grade != nil && o.Grade.Letter != "" {
			k.Grades[o.Grade.Letter]++
		}
		if !ep.ExposedSince.IsZero() {
			k.Exposed++
		}
		if m := ep.Match; m != nil {
			k.ByStatus[m.Status]++
			if m.Source == inventory.SourceDiscovered {
				unmanaged[m.Fingerprint] = true
			}
		}
	}
	k.Unmanaged = len(unmanaged)
	k.EncryptedShare = share(k.Encrypted, k.EncryptionKnown)
	k.TLS12OnlyShare = share(k.TLS12Only, k.TLS12Known)
	k.StrongOnlyShare = share(k.StrongOnly, k.StrongKnown)
	var total time.Duration
	for _, ev := range evs {
		if ev.Kind == EventRemediated && !ev.Since.IsZero() && !ev.At.Before(ev.Since) {
			k.Remediated++
			total += ev.At.Sub(ev.Since)
		}
	}
	if k.Remediated > 0 {
		k.MeanTimeToRemediate = math.Round((total / time.Duration(k.Remediated)).Seconds())
	}
	return k
}

func share(n, of int) float64 {
	if of == 0 {
		return 0
	}
	return math.Round(float64(n)/float64(of)*10000) / 10000
}
