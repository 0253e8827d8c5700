package tlsprobe

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// TestSuiteTableMatchesOpenSSL checks the hand-written table against
// OpenSSL's: every suite both know has the same IANA name and key
// exchange, authentication and encryption; every non-PSK, non-SRP suite
// OpenSSL can negotiate is in the table.
func TestSuiteTableMatchesOpenSSL(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not installed (Debian package openssl)")
	}
	out, err := exec.Command(bin, "ciphers", "-V", "-stdname", "ALL:COMPLEMENTOFALL:@SECLEVEL=0").Output()
	if err != nil {
		t.Fatalf("openssl ciphers: %v", err)
	}
	seen := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		// 0xC0,0x2C - TLS_ECDHE_..._SHA384 - ECDHE-ECDSA-AES256-GCM-SHA384 TLSv1.2 Kx=ECDH Au=ECDSA Enc=AESGCM(256) Mac=AEAD
		f := strings.Fields(line)
		if len(f) < 9 {
			t.Fatalf("unexpected openssl line %q", line)
		}
		var hi, lo uint16
		if _, err := fmt.Sscanf(f[0], "0x%02X,0x%02X", &hi, &lo); err != nil {
			t.Fatalf("unexpected id in %q: %v", line, err)
		}
		id, name, kx, au := hi<<8|lo, f[2], strings.TrimPrefix(f[6], "Kx="), strings.TrimPrefix(f[7], "Au=")
		if strings.Contains(name, "PSK") || strings.Contains(name, "SRP") {
			continue
		}
		s, ok := LookupSuite(id)
		if !ok {
			t.Errorf("OpenSSL suite 0x%04x %s is missing from the table", id, name)
			continue
		}
		seen++
		if s.Name != name {
			t.Errorf("0x%04x: table name %s, OpenSSL %s", id, s.Name, name)
		}
		wantKex := map[string][]KeyExchange{"RSA": {KexRSA}, "DH": {KexDHE}, "ECDH": {KexECDHE}, "any": {KexTLS13}}[kx]
		if len(wantKex) == 0 || wantKex[0] != s.Kex {
			t.Errorf("%s: kex %s, OpenSSL Kx=%s", name, s.Kex, kx)
		}
		wantAuth := map[string]Auth{"RSA": AuthRSA, "DSS": AuthDSS, "ECDSA": AuthECDSA, "None": AuthAnon, "any": AuthTLS13}[au]
		if wantAuth != s.Auth {
			t.Errorf("%s: auth %s, OpenSSL Au=%s", name, s.Auth, au)
		}
		enc := strings.TrimPrefix(f[8], "Enc=")
		if (enc == "None") != (s.Mode == ModeNull) {
			t.Errorf("%s: mode %s, OpenSSL Enc=%s", name, s.Mode, enc)
		}
		if i := strings.IndexByte(enc, '('); i > 0 && !strings.Contains(enc, fmt.Sprintf("(%d)", s.Bits)) {
			t.Errorf("%s: %d bits, OpenSSL Enc=%s", name, s.Bits, enc)
		}
	}
	if seen < 80 {
		t.Errorf("matched only %d suites with OpenSSL's list", seen)
	}
}

func TestParseSuiteName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		want Suite
	}{
		{"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", Suite{Kex: KexECDHE, Auth: AuthRSA, Cipher: "AES", Mode: ModeAEAD, MAC: "AEAD", Bits: 128, MinVersion: VersionTLS12}},
		{"TLS_RSA_WITH_3DES_EDE_CBC_SHA", Suite{Kex: KexRSA, Auth: AuthRSA, Cipher: "3DES", Mode: ModeCBC, MAC: "SHA1", Bits: 112, BlockBits: 64, MinVersion: VersionSSL30}},
		{"TLS_RSA_EXPORT_WITH_RC4_40_MD5", Suite{Kex: KexRSA, Auth: AuthRSA, Cipher: "RC4", Mode: ModeStream, MAC: "MD5", Bits: 40, Export: true, MinVersion: VersionSSL30}},
		{"TLS_DH_anon_WITH_AES_256_CBC_SHA256", Suite{Kex: KexDHE, Auth: AuthAnon, Cipher: "AES", Mode: ModeCBC, MAC: "SHA256", Bits: 256, BlockBits: 128, MinVersion: VersionTLS12}},
		{"TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8", Suite{Kex: KexECDHE, Auth: AuthECDSA, Cipher: "AES", Mode: ModeAEAD, MAC: "AEAD", Bits: 128, MinVersion: VersionTLS12}},
		{"TLS_AES_128_CCM_8_SHA256", Suite{Kex: KexTLS13, Auth: AuthTLS13, Cipher: "AES", Mode: ModeAEAD, MAC: "AEAD", Bits: 128, MinVersion: VersionTLS13}},
		{"TLS_RSA_WITH_NULL_MD5", Suite{Kex: KexRSA, Auth: AuthRSA, Cipher: "NULL", Mode: ModeNull, MAC: "MD5", MinVersion: VersionSSL30}},
	} {
		got, err := parseSuiteName(1, tc.name)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		tc.want.ID, tc.want.Name = 1, tc.name
		if got != tc.want {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.name, got, tc.want)
		}
	}
	for _, bad := range []string{"SSL_RSA_WITH_RC4_128_MD5", "TLS_FOO_WITH_AES_128_CBC_SHA", "TLS_RSA_WITH_AES_128_CBC", "TLS_RSA_WITH_AES_128_CBC_SHA1", "TLS_RSA_WITH_BLOWFISH_SHA", "TLS_RSA_EXPORT_WITH_AES_128_CBC_SHA"} {
		if _, err := parseSuiteName(1, bad); err == nil {
			t.Errorf("parseSuiteName(%q) succeeded", bad)
		}
	}
}
