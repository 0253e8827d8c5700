package tlsprobe_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/scan/grade"
	"github.com/certwright/certwright/internal/scan/tlsprobe"
)

func enumerate(t *testing.T, addr string, opts tlsprobe.Options) *tlsprobe.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if opts.Timeout == 0 {
		opts.Timeout = 5 * time.Second
	}
	rep, err := tlsprobe.Enumerate(ctx, tlsprobe.TCPDialer(addr), opts)
	if err != nil {
		t.Fatalf("Enumerate(%s): %v", addr, err)
	}
	if testing.Verbose() {
		b, _ := json.MarshalIndent(summary(rep), "", "  ")
		t.Logf("%s", b)
	}
	return rep
}

// summary is a report without certificate bytes, for logs.
func summary(r *tlsprobe.Report) any {
	c := *r
	c.Chains = nil
	return c
}

func suiteNames(vr tlsprobe.VersionResult) []string {
	var out []string
	for _, s := range vr.Suites {
		out = append(out, s.Name)
	}
	slices.Sort(out)
	return out
}

func groupNames(r *tlsprobe.Report, v tlsprobe.Version) []string {
	var out []string
	for _, g := range r.Groups {
		if g.Version == v {
			out = append(out, g.Name)
		}
	}
	slices.Sort(out)
	return out
}

func TestEnumerateGoStrictServer(t *testing.T) {
	t.Parallel()
	pki := tlsprobe.NewTestPKI(t, false)
	addr := tlsprobe.StartGoServer(t, &tls.Config{
		Certificates: []tls.Certificate{pki.Leaf},
		MinVersion:   tls.VersionTLS12,
		CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256},
	})
	rep := enumerate(t, addr, tlsprobe.Options{ServerName: "localhost"})
	for _, v := range []tlsprobe.Version{tlsprobe.VersionSSL30, tlsprobe.VersionTLS10, tlsprobe.VersionTLS11} {
		if rep.Version(v).Offered {
			t.Errorf("%s reported offered", v)
		}
	}
	want12 := []string{"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"}
	if got := suiteNames(rep.Version(tlsprobe.VersionTLS12)); !slices.Equal(got, want12) {
		t.Errorf("TLS 1.2 suites = %v, want %v", got, want12)
	}
	want13 := []string{"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}
	if got := suiteNames(rep.Version(tlsprobe.VersionTLS13)); !slices.Equal(got, want13) {
		t.Errorf("TLS 1.3 suites = %v, want %v", got, want13)
	}
	for _, g := range []string{"x25519", "secp256r1", "secp384r1", "X25519MLKEM768"} {
		if !slices.Contains(groupNames(rep, tlsprobe.VersionTLS13), g) {
			t.Errorf("TLS 1.3 groups %v lack %s", groupNames(rep, tlsprobe.VersionTLS13), g)
		}
	}
	if got := groupNames(rep, tlsprobe.VersionTLS12); !slices.Contains(got, "secp256r1") || slices.Contains(got, "secp192r1") {
		t.Errorf("TLS 1.2 curves = %v, want secp256r1 and not secp192r1", got)
	}
	if !rep.ForwardSecrecy.Offered || !rep.ForwardSecrecy.Preferred {
		t.Errorf("forward secrecy = %+v, want offered and preferred", rep.ForwardSecrecy)
	}
	if rep.FallbackSCSV == nil || !*rep.FallbackSCSV {
		t.Errorf("fallback SCSV = %v, want true", rep.FallbackSCSV)
	}
	if rep.SecureRenegotiation == nil || !*rep.SecureRenegotiation {
		t.Errorf("secure renegotiation = %v, want true", rep.SecureRenegotiation)
	}
	if len(rep.Chains) != 1 || len(rep.Chains[0].Certificates) != 2 || !slices.Contains(rep.Chains[0].Sources, "TLS 1.3 handshake") {
		t.Fatalf("chains = %+v, want one chain of 2 served in the TLS 1.3 handshake too", rep.Chains)
	}
	wantGrade(t, gradeOf(t, rep, pki), grade.A)
	if rep.Connections > 60 {
		t.Errorf("used %d connections for a small server, want <= 60", rep.Connections)
	}
}

// gradeOf grades a report with the test PKI's roots trusted.
func gradeOf(t *testing.T, rep *tlsprobe.Report, pki *tlsprobe.TestPKI) grade.Result {
	t.Helper()
	if len(rep.Chains) == 0 {
		t.Fatal("no certificate chain recorded")
	}
	cert, err := grade.CheckChain(rep.Chains[0].Certificates, grade.CheckOptions{ServerName: "localhost", Roots: pki.Roots, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	res, err := grade.Grade(grade.FromReport(rep, cert))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("grade %s (score %d): %+v", res.Letter, res.Score, res.Reasons)
	return res
}

func reasonCodes(res grade.Result) []string {
	var out []string
	for _, r := range res.Reasons {
		out = append(out, r.Code)
	}
	return out
}

func wantGrade(t *testing.T, res grade.Result, letter grade.Letter, codes ...string) {
	t.Helper()
	if res.Letter != letter {
		t.Errorf("grade = %s, want %s; reasons %v", res.Letter, letter, reasonCodes(res))
	}
	for _, c := range codes {
		if !slices.Contains(reasonCodes(res), c) {
			t.Errorf("reasons %v lack %q", reasonCodes(res), c)
		}
	}
}

func offered(rep *tlsprobe.Report) []string {
	var out []string
	for _, vr := range rep.Versions {
		if vr.Offered {
			out = append(out, vr.Version.String())
		}
	}
	return out
}

func TestEnumerateOpenSSL(t *testing.T) {
	t.Parallel()
	pki := tlsprobe.NewTestPKI(t, true)
	for _, tc := range []struct {
		name     string
		args     []string
		versions []string
		check    func(*testing.T, *tlsprobe.Report)
		letter   grade.Letter
		codes    []string
	}{{
		name:     "old protocols enabled, server order",
		args:     []string{"-cipher", "DEFAULT@SECLEVEL=0", "-serverpref"},
		versions: []string{"TLS 1.0", "TLS 1.1", "TLS 1.2", "TLS 1.3"},
		check: func(t *testing.T, rep *tlsprobe.Report) {
			vr := rep.Version(tlsprobe.VersionTLS12)
			if vr.ServerOrder == nil || !*vr.ServerOrder {
				t.Errorf("TLS 1.2 server order = %v, want true (-serverpref)", vr.ServerOrder)
			}
			if !vr.Suites[0].ForwardSecret() || vr.Suites[0].Mode != tlsprobe.ModeAEAD {
				t.Errorf("server's first TLS 1.2 choice %s is not a forward-secret AEAD suite", vr.Suites[0].Name)
			}
			if !slices.ContainsFunc(rep.Version(tlsprobe.VersionTLS10).Suites, func(s tlsprobe.AcceptedSuite) bool { return s.Name == "TLS_RSA_WITH_AES_128_CBC_SHA" }) {
				t.Error("TLS 1.0 suites lack TLS_RSA_WITH_AES_128_CBC_SHA")
			}
		},
		letter: grade.B, codes: []string{"tls10", "tls11"},
	}, {
		name:     "client order",
		args:     []string{"-cipher", "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384", "-no_tls1_3"},
		versions: []string{"TLS 1.2"},
		check: func(t *testing.T, rep *tlsprobe.Report) {
			if vr := rep.Version(tlsprobe.VersionTLS12); vr.ServerOrder == nil || *vr.ServerOrder {
				t.Errorf("TLS 1.2 server order = %v, want false", vr.ServerOrder)
			}
		},
		letter: grade.A,
	}, {
		name:     "RSA key exchange only",
		args:     []string{"-tls1_2", "-cipher", "AES128-SHA:AES256-GCM-SHA384:AES128-GCM-SHA256"},
		versions: []string{"TLS 1.2"},
		check: func(t *testing.T, rep *tlsprobe.Report) {
			want := []string{"TLS_RSA_WITH_AES_128_CBC_SHA", "TLS_RSA_WITH_AES_128_GCM_SHA256", "TLS_RSA_WITH_AES_256_GCM_SHA384"}
			if got := suiteNames(rep.Version(tlsprobe.VersionTLS12)); !slices.Equal(got, want) {
				t.Errorf("suites = %v, want %v", got, want)
			}
			if rep.ForwardSecrecy.Offered {
				t.Error("forward secrecy reported for RSA key transport")
			}
		},
		letter: grade.B, codes: []string{"no_forward_secrecy"},
	}, {
		name:     "DHE with 1024-bit parameters",
		args:     []string{"-tls1_2", "-cipher", "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-SHA:@SECLEVEL=0", "-dhparam", "testdata/dh1024.pem"},
		versions: []string{"TLS 1.2"},
		check: func(t *testing.T, rep *tlsprobe.Report) {
			if !slices.Equal(rep.DHPrimeBits, []int{1024}) {
				t.Errorf("DH prime sizes = %v, want [1024]", rep.DHPrimeBits)
			}
			for _, s := range rep.Version(tlsprobe.VersionTLS12).Suites {
				if s.Kex != tlsprobe.KexDHE || s.KexBits != 1024 {
					t.Errorf("suite %s: kex %s %d bits, want DHE 1024", s.Name, s.Kex, s.KexBits)
				}
			}
		},
		letter: grade.B, codes: []string{"kex_lt_2048"},
	}, {
		name:     "NULL and anonymous suites",
		args:     []string{"-tls1_2", "-cipher", "eNULL:aNULL:ECDHE-RSA-AES128-GCM-SHA256:@SECLEVEL=0"},
		versions: []string{"TLS 1.2"},
		check: func(t *testing.T, rep *tlsprobe.Report) {
			got := suiteNames(rep.Version(tlsprobe.VersionTLS12))
			for _, want := range []string{"TLS_RSA_WITH_NULL_SHA256", "TLS_DH_anon_WITH_AES_128_GCM_SHA256", "TLS_ECDH_anon_WITH_NULL_SHA"} {
				if !slices.Contains(got, want) {
					t.Errorf("suites %v lack %s", got, want)
				}
			}
		},
		letter: grade.F, codes: []string{"null_cipher", "anonymous_suite"},
	}, {
		name:     "TLS 1.0 only",
		args:     []string{"-tls1", "-cipher", "DEFAULT@SECLEVEL=0"},
		versions: []string{"TLS 1.0"},
		letter:   grade.C, codes: []string{"no_tls12", "tls10", "no_aead"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr := tlsprobe.StartOpenSSL(t, pki, tc.args...)
			rep := enumerate(t, addr, tlsprobe.Options{ServerName: "localhost"})
			if got := offered(rep); !slices.Equal(got, tc.versions) {
				t.Errorf("offered versions = %v, want %v", got, tc.versions)
			}
			if tc.check != nil {
				tc.check(t, rep)
			}
			wantGrade(t, gradeOf(t, rep, pki), tc.letter, tc.codes...)
		})
	}
}

// TestEnumerateGoLegacyServer covers what this OpenSSL build cannot
// serve: RC4 and 3DES.
func TestEnumerateGoLegacyServer(t *testing.T) {
	t.Parallel()
	pki := tlsprobe.NewTestPKI(t, true)
	addr := tlsprobe.StartGoServer(t, &tls.Config{
		Certificates: []tls.Certificate{pki.Leaf},
		MinVersion:   tls.VersionTLS10,
		MaxVersion:   tls.VersionTLS12,
		CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
			tls.TLS_RSA_WITH_RC4_128_SHA, tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA},
	})
	rep := enumerate(t, addr, tlsprobe.Options{ServerName: "localhost", MinInterval: time.Millisecond})
	if got, want := offered(rep), []string{"TLS 1.0", "TLS 1.1", "TLS 1.2"}; !slices.Equal(got, want) {
		t.Errorf("offered = %v, want %v", got, want)
	}
	want10 := []string{"TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "TLS_RSA_WITH_3DES_EDE_CBC_SHA", "TLS_RSA_WITH_RC4_128_SHA"}
	if got := suiteNames(rep.Version(tlsprobe.VersionTLS10)); !slices.Equal(got, want10) {
		t.Errorf("TLS 1.0 suites = %v, want %v", got, want10)
	}
	if got := suiteNames(rep.Version(tlsprobe.VersionTLS12)); len(got) != 5 {
		t.Errorf("TLS 1.2 suites = %v, want all 5", got)
	}
	wantGrade(t, gradeOf(t, rep, pki), grade.C, "rc4", "block64", "tls10")
}
