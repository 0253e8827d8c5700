package grade

import (
	"errors"
	"slices"
	"testing"
)

func ptr[T any](v T) *T { return &v }

var (
	ecdheGCM = Suite{Protocol: TLS12, Name: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", ForwardSecret: true, AEAD: true, Bits: 128, KexStrength: 3072}
	tls13AES = Suite{Protocol: TLS13, Name: "TLS_AES_256_GCM_SHA384", ForwardSecret: true, AEAD: true, Bits: 256, KexStrength: 3072}
	rsaCBC   = Suite{Protocol: TLS12, Name: "TLS_RSA_WITH_AES_128_CBC_SHA", Bits: 128, BlockBits: 128}
	rsaGCM   = Suite{Protocol: TLS12, Name: "TLS_RSA_WITH_AES_256_GCM_SHA384", AEAD: true, Bits: 256}
	rsa2048  = Cert{KeyType: "RSA", KeyBits: 2048, KeyStrength: 2048}
)

// modern is a strict TLS 1.2 + 1.3, ECDHE, AEAD server.
func modern() Input {
	return Input{
		Protocols: []Protocol{TLS12, TLS13}, Suites: []Suite{tls13AES, ecdheGCM},
		FSPreferred: ptr(true), Cert: rsa2048, SecureRenegotiation: ptr(true), FallbackSCSV: ptr(true),
	}
}

func TestGrade(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		edit     func(*Input)
		letter   Letter
		ignoring Letter // when it differs from letter
		codes    []string
		score    int
	}{
		{name: "modern", edit: func(*Input) {}, letter: A, score: 93},
		{name: "hsts long", edit: func(in *Input) { in.HSTSMaxAge = ptr[int64](31536000) }, letter: APlus, codes: []string{"hsts_long"}},
		{name: "hsts short", edit: func(in *Input) { in.HSTSMaxAge = ptr[int64](86400) }, letter: A},
		{name: "hsts but warning", edit: func(in *Input) { in.HSTSMaxAge = ptr[int64](31536000); in.FallbackSCSV = ptr(false) },
			letter: AMinus, codes: []string{"no_fallback_scsv"}},
		{name: "no secure renegotiation", edit: func(in *Input) { in.SecureRenegotiation = ptr(false) }, letter: AMinus, codes: []string{"no_secure_renegotiation"}},
		{name: "tls 1.0", edit: func(in *Input) {
			in.Protocols = append(in.Protocols, TLS10)
			in.Suites = append(in.Suites, Suite{Protocol: TLS10, Name: "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", ForwardSecret: true, Bits: 128, BlockBits: 128})
		}, letter: B, codes: []string{"tls10"}},
		{name: "tls 1.1", edit: func(in *Input) { in.Protocols = append(in.Protocols, TLS11) }, letter: B, codes: []string{"tls11"}},
		{name: "ssl 3", edit: func(in *Input) { in.Protocols = append(in.Protocols, SSL3) }, letter: C, codes: []string{"ssl3"}},
		{name: "ssl 2", edit: func(in *Input) { in.Protocols = append(in.Protocols, SSL2) }, letter: F, codes: []string{"ssl2"}},
		{name: "only tls 1.0", edit: func(in *Input) {
			in.Protocols = []Protocol{TLS10}
			in.Suites = []Suite{{Protocol: TLS10, Name: "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", ForwardSecret: true, Bits: 128, BlockBits: 128}}
		}, letter: C, codes: []string{"no_tls12", "tls10", "no_aead"}},
		{name: "rsa kex only", edit: func(in *Input) {
			in.Protocols = []Protocol{TLS12}
			in.Suites = []Suite{rsaGCM, rsaCBC}
			in.FSPreferred = ptr(false)
		}, letter: B, codes: []string{"no_forward_secrecy"}},
		{name: "fs not preferred", edit: func(in *Input) { in.Suites = append(in.Suites, rsaGCM); in.FSPreferred = ptr(false) },
			letter: B, codes: []string{"forward_secrecy_not_preferred"}},
		{name: "no aead", edit: func(in *Input) {
			in.Protocols = []Protocol{TLS12}
			in.Suites = []Suite{{Protocol: TLS12, Name: "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", ForwardSecret: true, Bits: 128, BlockBits: 128, KexStrength: 3072}}
		}, letter: B, codes: []string{"no_aead"}},
		{name: "rc4", edit: func(in *Input) {
			in.Suites = append(in.Suites, Suite{Protocol: TLS12, Name: "TLS_RSA_WITH_RC4_128_SHA", RC4: true, Bits: 128})
		}, letter: C, codes: []string{"rc4"}},
		{name: "3des", edit: func(in *Input) {
			in.Suites = append(in.Suites, Suite{Protocol: TLS12, Name: "TLS_RSA_WITH_3DES_EDE_CBC_SHA", Bits: 112, BlockBits: 64})
		}, letter: C, codes: []string{"block64"}},
		{name: "single des", edit: func(in *Input) {
			in.Suites = append(in.Suites, Suite{Protocol: TLS12, Name: "TLS_RSA_WITH_DES_CBC_SHA", Bits: 56, BlockBits: 64})
		}, letter: F, codes: []string{"weak_cipher", "block64"}},
		{name: "export", edit: func(in *Input) {
			in.Suites = append(in.Suites, Suite{Protocol: TLS12, Name: "TLS_RSA_EXPORT_WITH_RC4_40_MD5", Export: true, RC4: true, Bits: 40})
		}, letter: F, codes: []string{"export_suite"}},
		{name: "null", edit: func(in *Input) {
			in.Suites = append(in.Suites, Suite{Protocol: TLS12, Name: "TLS_RSA_WITH_NULL_SHA"})
		}, letter: F, codes: []string{"null_cipher"}},
		{name: "anonymous", edit: func(in *Input) {
			in.Suites = append(in.Suites, Suite{Protocol: TLS12, Name: "TLS_DH_anon_WITH_AES_128_GCM_SHA256", ForwardSecret: true, Anonymous: true, AEAD: true, Bits: 128, KexStrength: 2048})
		}, letter: F, codes: []string{"anonymous_suite", "zero_category"}, score: 0},
		{name: "dh 1024", edit: func(in *Input) {
			in.Suites = append(in.Suites, Suite{Protocol: TLS12, Name: "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", ForwardSecret: true, AEAD: true, Bits: 128, KexStrength: 1024})
		}, letter: B, codes: []string{"kex_lt_2048"}},
		{name: "dh 768", edit: func(in *Input) { in.EphemeralStrengths = []int{768} }, letter: F, codes: []string{"kex_lt_1024"}},
		{name: "rsa 1024 key", edit: func(in *Input) { in.Cert = Cert{KeyType: "RSA", KeyBits: 1024, KeyStrength: 1024} }, letter: B, codes: []string{"cert_key_lt_2048"}},
		{name: "rsa 512 key", edit: func(in *Input) { in.Cert = Cert{KeyType: "RSA", KeyBits: 512, KeyStrength: 512} }, letter: F, codes: []string{"cert_key_lt_1024"}},
		{name: "insecure renegotiation", edit: func(in *Input) { in.InsecureRenegotiation = true }, letter: F, codes: []string{"insecure_renegotiation"}},
		{name: "self-signed", edit: func(in *Input) { in.Cert.Problems = []CertProblem{CertSelfSigned} }, letter: T, ignoring: A, codes: []string{"cert_self_signed"}},
		{name: "expired and mismatch", edit: func(in *Input) { in.Cert.Problems = []CertProblem{CertNameMismatch, CertExpired} }, letter: T, ignoring: A,
			codes: []string{"cert_name_mismatch", "cert_expired"}},
		{name: "mismatch", edit: func(in *Input) { in.Cert.Problems = []CertProblem{CertNameMismatch} }, letter: M, ignoring: A, codes: []string{"cert_name_mismatch"}},
		{name: "revoked", edit: func(in *Input) { in.Cert.Problems = []CertProblem{CertRevoked} }, letter: F, codes: []string{"cert_revoked"}},
		{name: "revoked and untrusted", edit: func(in *Input) { in.Cert.Problems = []CertProblem{CertRevoked, CertUntrusted} }, letter: T, ignoring: F,
			codes: []string{"cert_revoked", "cert_untrusted"}},
		{name: "caps combine to the worst", edit: func(in *Input) {
			in.Protocols = append(in.Protocols, TLS10, SSL3)
			in.HSTSMaxAge = ptr[int64](31536000)
		}, letter: C, codes: []string{"ssl3", "tls10"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := modern()
			tc.edit(&in)
			res, err := Grade(in)
			if err != nil {
				t.Fatal(err)
			}
			ignoring := tc.ignoring
			if ignoring == "" {
				ignoring = tc.letter
			}
			if res.Letter != tc.letter || res.LetterIgnoringTrust != ignoring {
				t.Errorf("grade = %s (ignoring trust %s), want %s (%s); reasons %+v", res.Letter, res.LetterIgnoringTrust, tc.letter, ignoring, res.Reasons)
			}
			var codes []string
			for _, r := range res.Reasons {
				codes = append(codes, r.Code)
				if r.Message == "" {
					t.Errorf("reason %s has no message", r.Code)
				}
			}
			for _, c := range tc.codes {
				if !slices.Contains(codes, c) {
					t.Errorf("reasons %v lack %s", codes, c)
				}
			}
			if tc.score != 0 && res.Score != tc.score {
				t.Errorf("score = %d, want %d", res.Score, tc.score)
			}
			if tc.name == "modern" && len(res.Reasons) != 0 {
				t.Errorf("a clean server got reasons %+v", res.Reasons)
			}
			if res.RulesVersion != RulesVersion {
				t.Errorf("rules version = %q", res.RulesVersion)
			}
		})
	}
}

// TestScores pins the category arithmetic to the guide's tables.
func TestScores(t *testing.T) {
	t.Parallel()
	in := Input{
		Protocols: []Protocol{TLS10, TLS12},
		Suites: []Suite{
			{Protocol: TLS12, Name: "a", ForwardSecret: true, AEAD: true, Bits: 256, KexStrength: 1024},
			{Protocol: TLS10, Name: "b", ForwardSecret: true, Bits: 128, BlockBits: 128},
		},
		Cert: Cert{KeyType: "RSA", KeyBits: 4096, KeyStrength: 4096},
	}
	res, err := Grade(in)
	if err != nil {
		t.Fatal(err)
	}
	// Protocol (100+90)/2 = 95; key exchange: DH 1024 → 80; cipher (100+80)/2 = 90.
	// 0.3*95 + 0.3*80 + 0.4*90 = 28.5 + 24 + 36 = 88.5 → 89.
	if res.ProtocolScore != 95 || res.KeyExchangeScore != 80 || res.CipherScore != 90 || res.Score != 89 {
		t.Errorf("scores = %d/%d/%d → %d, want 95/80/90 → 89", res.ProtocolScore, res.KeyExchangeScore, res.CipherScore, res.Score)
	}
	if res.Letter != B {
		t.Errorf("letter = %s, want B (score A, capped by TLS 1.0 and DH 1024)", res.Letter)
	}
	for score, want := range map[int]Letter{100: A, 80: A, 79: B, 65: B, 64: C, 50: C, 49: D, 35: D, 34: E, 20: E, 19: F, 0: F} {
		if got := scoreLetter(score); got != want {
			t.Errorf("scoreLetter(%d) = %s, want %s", score, got, want)
		}
	}
}

func TestGradeNothingOffered(t *testing.T) {
	t.Parallel()
	if _, err := Grade(Input{}); !errors.Is(err, ErrNothingOffered) {
		t.Fatalf("Grade(empty) error = %v, want ErrNothingOffered", err)
	}
}
