package lint

import (
	"encoding/asn1"
	"fmt"

	zx509 "github.com/zmap/zcrypto/x509"
	zl "github.com/zmap/zlint/v3/lint"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// extDERLint is zlint's RFC 5280 lint that reports an extension whose
// critical flag is present and FALSE (DER omits a default value). zlint's
// implementation decodes the whole certificate again through reflection
// to read that flag: about 12 us of each certificate, the most expensive
// lint a leaf runs. The Linter runs an equivalent walk of the extensions
// it already has (same name, status, details, applicability and effective
// date; TestExtDERMatchesZlint) and keeps zlint's out of its registries so
// nothing runs twice.
const extDERLint = "e_cert_ext_invalid_der"

// extDER checks zc's extensions as zlint's lint does; meta is zlint's lint,
// whose effective date (RFC 5280's) decides, as in zlint, that a
// certificate from before it is not checked. It returns nil when the
// extensions pass or the lint is not in effect, and otherwise the failing
// result.
func extDER(meta *zl.CertificateLint, zc *zx509.Certificate) *zl.LintResult {
	if !meta.CheckEffective(zc) {
		return nil
	}
	exts, ok := tbsExtensions(zc.RawTBSCertificate)
	if !ok {
		return &zl.LintResult{Status: zl.Fatal, Details: "Failed to decode certificate"}
	}
	for !exts.Empty() {
		var ext cryptobyte.String
		var oid asn1.ObjectIdentifier
		if !exts.ReadASN1(&ext, cbasn1.SEQUENCE) || !ext.ReadASN1ObjectIdentifier(&oid) {
			return &zl.LintResult{Status: zl.Fatal, Details: "Failed to decode certificate"}
		}
		var flag cryptobyte.String
		if ext.PeekASN1Tag(cbasn1.BOOLEAN) && ext.ReadASN1(&flag, cbasn1.BOOLEAN) && (len(flag) == 0 || flag[0] == 0) {
			return &zl.LintResult{
				Status:  zl.Error,
				Details: fmt.Sprintf("The %v extension is not properly DER-encoded ('critical' must be absent when FALSE)", oid),
			}
		}
	}
	return nil
}

// tbsExtensions returns the contents of tbs's extensions field (empty
// when it has none); ok is false when tbs is not a TBSCertificate. It
// reads as leniently as zlint's decode (encoding/asn1 into a struct):
// unique IDs in either form, and bytes after the extensions, inside their
// explicit tag or after it, ignored.
func tbsExtensions(tbs []byte) (exts cryptobyte.String, ok bool) {
	in := cryptobyte.String(tbs)
	var body cryptobyte.String
	if !in.ReadASN1(&body, cbasn1.SEQUENCE) || !in.Empty() {
		return nil, false
	}
	// version [0] (optional), serialNumber, signature, issuer, validity,
	// subject, subjectPublicKeyInfo.
	if !body.SkipOptionalASN1(cbasn1.Tag(0).Constructed().ContextSpecific()) {
		return nil, false
	}
	var skip cryptobyte.String
	var tag cbasn1.Tag
	for range 6 {
		if !body.ReadAnyASN1(&skip, &tag) {
			return nil, false
		}
	}
	// issuerUniqueID [1] and subjectUniqueID [2] (optional).
	for _, n := range []cbasn1.Tag{1, 2} {
		for _, t := range []cbasn1.Tag{n.ContextSpecific(), n.Constructed().ContextSpecific()} {
			if !body.SkipOptionalASN1(t) {
				return nil, false
			}
		}
	}
	if body.Empty() || !body.PeekASN1Tag(cbasn1.Tag(3).Constructed().ContextSpecific()) {
		return nil, true
	}
	var explicit cryptobyte.String
	if !body.ReadASN1(&explicit, cbasn1.Tag(3).Constructed().ContextSpecific()) ||
		!explicit.ReadASN1(&exts, cbasn1.SEQUENCE) {
		return nil, false
	}
	return exts, true
}
