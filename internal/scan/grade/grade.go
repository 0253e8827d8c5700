// Package grade rates one TLS endpoint the way the SSL Labs SSL Server
// Rating Guide does: protocol support 30 %, key exchange 30 % and cipher
// strength 40 % make a 0–100 score and a letter, then rules cap the letter
// (TLS 1.0 → B, RC4 → C, export suites → F, ...), warnings turn an A into
// an A-, a long HSTS max-age turns a clean A into an A+, and certificate
// trust problems replace the letter with T (not trusted) or M (name
// mismatch). Build an Input (FromReport does it from a tlsprobe.Report),
// call Grade, and show Result.Reasons: each has a stable code and a
// sentence a person can act on.
//
// The rules follow guide version 2009r with the January 2020 TLS 1.0/1.1
// change; RulesVersion names them so a stored grade says which rules made
// it. Deliberate differences from SSL Labs (it simulates reference
// browsers, we see only what the server accepts):
//
//   - Forward secrecy, RC4 and 64-bit block ciphers are judged on what the
//     server accepts, not on what reference browsers negotiate: a server
//     that still accepts 3DES is capped at C even if it would never choose
//     it for a modern client. Forward secrecy counts as missing (B) when no
//     suite has it, or when the server's own first choice at its best
//     version lacks it.
//   - 3DES counts as 112 bits (its real strength), so it scores 20 % in
//     the cipher category where the 2009 guide's example scored 168 bits.
//   - Non-export ciphers below 112 bits (single DES) cap the grade at F;
//     the guide scores them only 20 %.
//   - SSL 3.0 caps at C outright (the guide caps POODLE-vulnerable servers
//     at C; SSL 3.0 with only RC4 would be capped at C by the RC4 rule).
//   - TLS 1.3 scores 100 % in the protocol category, like TLS 1.2.
//   - Missing TLS_FALLBACK_SCSV is a warning (A at best A-), as is missing
//     secure renegotiation (RFC 5746). Insecure renegotiation (F) is only
//     applied when the caller says so: the prober does not test it.
//   - An ephemeral group weaker than 2048-bit RSA (DH below 2048 bits, or a
//     curve like secp192r1) caps at B, DH below 1024 bits at F; the guide
//     writes these for DH only.
//   - Not checked (no probe for them yet): Heartbleed, ROBOT, POODLE TLS,
//     OpenSSL CCS injection, DROWN, Ticketbleed, CRIME/compression and the
//     Debian weak-key list.
package grade

import (
	"errors"
	"fmt"
	"slices"
)

// RulesVersion names the rule set a Result was made with.
const RulesVersion = "ssllabs-2009r+2020/certwright-1"

// Letter is a grade. T and M are not ranks: they replace the letter when
// the certificate is not trusted (T) or does not match the name (M).
type Letter string

// Letters, best first.
const (
	APlus  Letter = "A+"
	A      Letter = "A"
	AMinus Letter = "A-"
	B      Letter = "B"
	C      Letter = "C"
	D      Letter = "D"
	E      Letter = "E"
	F      Letter = "F"
	T      Letter = "T"
	M      Letter = "M"
)

var rank = map[Letter]int{APlus: 0, A: 1, AMinus: 2, B: 3, C: 4, D: 5, E: 6, F: 7}

// worse returns the lower of two ranked letters.
func worse(a, b Letter) Letter {
	if rank[b] > rank[a] {
		return b
	}
	return a
}

// Protocol is a protocol version.
type Protocol int

// Protocols, oldest first.
const (
	SSL2 Protocol = iota + 1
	SSL3
	TLS10
	TLS11
	TLS12
	TLS13
)

var protocolInfo = map[Protocol]struct {
	name  string
	score int // Protocol support rating guide
}{
	SSL2: {"SSL 2.0", 0}, SSL3: {"SSL 3.0", 80}, TLS10: {"TLS 1.0", 90},
	TLS11: {"TLS 1.1", 95}, TLS12: {"TLS 1.2", 100}, TLS13: {"TLS 1.3", 100},
}

func (p Protocol) String() string {
	if i, ok := protocolInfo[p]; ok {
		return i.name
	}
	return fmt.Sprintf("protocol(%d)", int(p))
}

// Suite is one accepted cipher suite at one protocol version.
type Suite struct {
	Protocol Protocol
	Name     string
	// ForwardSecret: ephemeral (EC)DH or TLS 1.3.
	ForwardSecret bool
	Anonymous     bool
	Export        bool
	AEAD          bool
	RC4           bool
	// Bits is the effective symmetric key strength (0 for NULL ciphers).
	Bits int
	// BlockBits is the block size; 64 marks SWEET32-prone ciphers.
	BlockBits int
	// KexStrength is the RSA-equivalent strength of the ephemeral key
	// exchange the server used with this suite (DH prime bits, or a
	// curve's equivalent); 0 when not ephemeral or unknown.
	KexStrength int
}

// CertProblem is a certificate finding, by stable code.
type CertProblem string

// Certificate problems and the grade they lead to.
const (
	CertUntrusted         CertProblem = "untrusted"          // T: no path to a trusted root
	CertSelfSigned        CertProblem = "self_signed"        // T
	CertExpired           CertProblem = "expired"            // T
	CertNotYetValid       CertProblem = "not_yet_valid"      // T
	CertSHA1Signature     CertProblem = "sha1_signature"     // T: browsers distrust SHA-1 since 2017
	CertNameMismatch      CertProblem = "name_mismatch"      // M
	CertRevoked           CertProblem = "revoked"            // F
	CertInsecureSignature CertProblem = "insecure_signature" // F: MD2 or MD5
)

var certProblemInfo = map[CertProblem]struct {
	letter Letter
	text   string
}{
	CertUntrusted:         {T, "the certificate does not chain to a trusted root"},
	CertSelfSigned:        {T, "the certificate is self-signed"},
	CertExpired:           {T, "the certificate (or one in its chain) has expired"},
	CertNotYetValid:       {T, "the certificate (or one in its chain) is not valid yet"},
	CertSHA1Signature:     {T, "the chain is signed with SHA-1, which browsers no longer trust"},
	CertNameMismatch:      {M, "the certificate does not cover the name that was scanned"},
	CertRevoked:           {F, "the certificate is revoked"},
	CertInsecureSignature: {F, "the chain is signed with MD2 or MD5"},
}

// Cert is what the grade needs to know about the served certificate.
type Cert struct {
	// KeyStrength is the RSA-equivalent strength of the leaf key (an RSA
	// or DSA key's size; 3072 for P-256 or Ed25519, 7680 for P-384).
	KeyStrength int
	KeyType     string // "RSA", "ECDSA", "Ed25519", "DSA": for messages
	KeyBits     int    // nominal size, for messages
	Problems    []CertProblem
}

// Input is everything a grade is computed from.
type Input struct {
	Protocols []Protocol
	Suites    []Suite
	// FSPreferred: a modern client gets forward secrecy (the server's first
	// choice at its best version is forward secret). Nil: not known, and
	// only the offered-at-all rule applies.
	FSPreferred *bool
	// EphemeralStrengths lists the RSA-equivalent strengths of every
	// ephemeral group the server accepted (DH primes, curves, TLS 1.3
	// groups), in addition to those in Suites.
	EphemeralStrengths []int
	Cert               Cert
	// SecureRenegotiation: RFC 5746 support; nil when unknown.
	SecureRenegotiation *bool
	// InsecureRenegotiation: the server accepts client-initiated
	// renegotiation without RFC 5746 (found by another test).
	InsecureRenegotiation bool
	// FallbackSCSV: the server refuses downgraded hellos; nil when unknown
	// or only one protocol is offered.
	FallbackSCSV *bool
	// HSTSMaxAge is the Strict-Transport-Security max-age in seconds; nil
	// when not measured (not HTTPS) or absent.
	HSTSMaxAge *int64
}

// Reason explains one effect on the grade. Grade is the letter it caps
// the result at (A- for a warning, T or M for certificate trust), or A+
// for the reward.
type Reason struct {
	Code    string `json:"code"`
	Grade   Letter `json:"grade"`
	Message string `json:"message"`
}

// Result is a graded endpoint.
type Result struct {
	Letter Letter `json:"letter"`
	// LetterIgnoringTrust is what Letter would be with a trusted,
	// matching certificate (SSL Labs' "if trust issues are ignored").
	LetterIgnoringTrust Letter   `json:"letter_ignoring_trust"`
	Score               int      `json:"score"`
	ProtocolScore       int      `json:"protocol_score"`
	KeyExchangeScore    int      `json:"key_exchange_score"`
	CipherScore         int      `json:"cipher_score"`
	Reasons             []Reason `json:"reasons"`
	RulesVersion        string   `json:"rules_version"`
}

// HSTSMinAge is the max-age SSL Labs requires for A+: 180 days.
const HSTSMinAge = 180 * 24 * 60 * 60

// ErrNothingOffered is returned when the input has no protocol or suite.
var ErrNothingOffered = errors.New("grade: the server offers no protocol version or cipher suite to grade")

// Grade rates an endpoint.
func Grade(in Input) (Result, error) {
	if len(in.Protocols) == 0 || len(in.Suites) == 0 {
		return Result{}, ErrNothingOffered
	}
	res := Result{RulesVersion: RulesVersion}
	g := &grader{in: in, res: &res}
	res.ProtocolScore = g.protocolScore()
	res.KeyExchangeScore = g.keyExchangeScore()
	res.CipherScore = g.cipherScore()
	if res.ProtocolScore == 0 || res.KeyExchangeScore == 0 || res.CipherScore == 0 {
		res.Score = 0 // a zero in any category zeroes the total
	} else {
		// Weights 30/30/40, rounded half up.
		res.Score = (30*res.ProtocolScore + 30*res.KeyExchangeScore + 40*res.CipherScore + 50) / 100
	}
	letter := scoreLetter(res.Score)
	if res.Score == 0 {
		g.add("zero_category", F, "a category scored zero (no usable protocol, key exchange or encryption): grade F")
	}
	g.rules()
	for _, r := range res.Reasons {
		if _, ranked := rank[r.Grade]; ranked && r.Grade != APlus && r.Grade != AMinus {
			letter = worse(letter, r.Grade)
		}
	}
	warnings := slices.ContainsFunc(res.Reasons, func(r Reason) bool { return r.Grade == AMinus })
	switch {
	case letter == A && warnings:
		letter = AMinus
	case letter == A && in.HSTSMaxAge != nil && *in.HSTSMaxAge >= HSTSMinAge:
		letter = APlus
		g.add("hsts_long", APlus, fmt.Sprintf("HTTP Strict Transport Security with max-age %d s (at least 180 days) and no warnings: grade raised to A+", *in.HSTSMaxAge))
	}
	res.LetterIgnoringTrust = letter
	res.Letter = letter
	g.certTrust()
	return res, nil
}

type grader struct {
	in  Input
	res *Result
}

func (g *grader) add(code string, l Letter, msg string) {
	g.res.Reasons = append(g.res.Reasons, Reason{Code: code, Grade: l, Message: msg})
}

func scoreLetter(s int) Letter {
	switch {
	case s >= 80:
		return A
	case s >= 65:
		return B
	case s >= 50:
		return C
	case s >= 35:
		return D
	case s >= 20:
		return E
	}
	return F
}

// protocolScore averages the best and the worst protocol's scores.
func (g *grader) protocolScore() int {
	best, worst := -1, 101
	for _, p := range g.in.Protocols {
		s := protocolInfo[p].score
		best, worst = max(best, s), min(worst, s)
	}
	return (best + worst) / 2
}

// strengthScore is the key exchange rating guide's table.
func strengthScore(bits int) int {
	switch {
	case bits < 512:
		return 20
	case bits < 1024:
		return 40
	case bits < 2048:
		return 80
	case bits < 4096:
		return 90
	}
	return 100
}

// keyExchangeScore rates the weakest of the certificate key and every
// ephemeral group: a DHE exchange is never stronger than its parameters.
func (g *grader) keyExchangeScore() int {
	if slices.ContainsFunc(g.in.Suites, func(s Suite) bool { return s.Anonymous }) {
		return 0
	}
	weakest := g.in.Cert.KeyStrength
	for _, s := range g.ephemeral() {
		if weakest == 0 || s < weakest {
			weakest = s
		}
	}
	score := strengthScore(weakest)
	if slices.ContainsFunc(g.in.Suites, func(s Suite) bool { return s.Export }) {
		score = min(score, 40)
	}
	return score
}

func (g *grader) ephemeral() []int {
	out := slices.Clone(g.in.EphemeralStrengths)
	for _, s := range g.in.Suites {
		if s.KexStrength > 0 {
			out = append(out, s.KexStrength)
		}
	}
	return out
}

func cipherBitsScore(bits int) int {
	switch {
	case bits == 0:
		return 0
	case bits < 128:
		return 20
	case bits < 256:
		return 80
	}
	return 100
}

// cipherScore averages the strongest and the weakest cipher's scores.
func (g *grader) cipherScore() int {
	best, worst := -1, 101
	for _, s := range g.in.Suites {
		c := cipherBitsScore(s.Bits)
		best, worst = max(best, c), min(worst, c)
	}
	return (best + worst) / 2
}

func (g *grader) has(p Protocol) bool { return slices.Contains(g.in.Protocols, p) }

func (g *grader) anySuite(f func(Suite) bool) (Suite, bool) {
	i := slices.IndexFunc(g.in.Suites, f)
	if i < 0 {
		return Suite{}, false
	}
	return g.in.Suites[i], true
}

// rules applies the guide's caps and warnings, worst first.
func (g *grader) rules() {
	in := g.in
	if g.has(SSL2) {
		g.add("ssl2", F, "SSL 2.0 is enabled: grade F")
	}
	if in.InsecureRenegotiation {
		g.add("insecure_renegotiation", F, "the server accepts insecure client-initiated renegotiation: grade F")
	}
	if s, ok := g.anySuite(func(s Suite) bool { return s.Export }); ok {
		g.add("export_suite", F, fmt.Sprintf("export cipher suite %s is accepted (FREAK/Logjam): grade F", s.Name))
	}
	if s, ok := g.anySuite(func(s Suite) bool { return s.Bits == 0 }); ok {
		g.add("null_cipher", F, fmt.Sprintf("cipher suite %s does not encrypt: grade F", s.Name))
	}
	if s, ok := g.anySuite(func(s Suite) bool { return s.Anonymous }); ok {
		g.add("anonymous_suite", F, fmt.Sprintf("anonymous cipher suite %s is accepted, so anyone can impersonate the server: grade F", s.Name))
	}
	if s, ok := g.anySuite(func(s Suite) bool { return !s.Export && s.Bits > 0 && s.Bits < 112 }); ok {
		g.add("weak_cipher", F, fmt.Sprintf("cipher suite %s has only %d-bit encryption: grade F", s.Name, s.Bits))
	}
	g.keyRules()
	if g.has(SSL3) {
		g.add("ssl3", C, "SSL 3.0 is enabled (POODLE): grade capped at C")
	}
	if !g.has(TLS12) && !g.has(TLS13) {
		g.add("no_tls12", C, "neither TLS 1.2 nor TLS 1.3 is supported: grade capped at C")
	}
	if s, ok := g.anySuite(func(s Suite) bool { return s.RC4 }); ok {
		g.add("rc4", C, fmt.Sprintf("RC4 cipher suite %s is accepted: grade capped at C", s.Name))
	}
	if s, ok := g.anySuite(func(s Suite) bool { return s.BlockBits == 64 }); ok {
		g.add("block64", C, fmt.Sprintf("cipher suite %s uses a 64-bit block cipher (SWEET32): grade capped at C", s.Name))
	}
	if g.has(TLS10) {
		g.add("tls10", B, "TLS 1.0 is enabled: grade capped at B")
	}
	if g.has(TLS11) {
		g.add("tls11", B, "TLS 1.1 is enabled: grade capped at B")
	}
	switch {
	case !slices.ContainsFunc(in.Suites, func(s Suite) bool { return s.ForwardSecret }):
		g.add("no_forward_secrecy", B, "no cipher suite offers forward secrecy: grade capped at B")
	case in.FSPreferred != nil && !*in.FSPreferred:
		g.add("forward_secrecy_not_preferred", B, "the server prefers a suite without forward secrecy: grade capped at B")
	}
	if !slices.ContainsFunc(in.Suites, func(s Suite) bool { return s.AEAD }) {
		g.add("no_aead", B, "no AEAD cipher suite (GCM, ChaCha20-Poly1305, CCM) is offered: grade capped at B")
	}
	if in.SecureRenegotiation != nil && !*in.SecureRenegotiation {
		g.add("no_secure_renegotiation", AMinus, "secure renegotiation (RFC 5746) is not supported: warning")
	}
	if in.FallbackSCSV != nil && !*in.FallbackSCSV {
		g.add("no_fallback_scsv", AMinus, "TLS_FALLBACK_SCSV is not honoured, so a protocol downgrade is not detected: warning")
	}
}

func (g *grader) keyRules() {
	in := g.in
	var dhMin int
	for _, s := range in.Suites {
		if s.KexStrength > 0 && (dhMin == 0 || s.KexStrength < dhMin) {
			dhMin = s.KexStrength
		}
	}
	for _, s := range in.EphemeralStrengths {
		if dhMin == 0 || s < dhMin {
			dhMin = s
		}
	}
	switch {
	case dhMin > 0 && dhMin < 1024:
		g.add("kex_lt_1024", F, fmt.Sprintf("the server accepts key exchange parameters as weak as %d-bit RSA (Logjam): grade F", dhMin))
	case dhMin > 0 && dhMin < 2048:
		g.add("kex_lt_2048", B, fmt.Sprintf("the server accepts key exchange parameters as weak as %d-bit RSA: grade capped at B", dhMin))
	}
	k := in.Cert
	desc := fmt.Sprintf("%s %d-bit", k.KeyType, k.KeyBits)
	switch {
	case k.KeyStrength == 0:
	case k.KeyStrength < 1024:
		g.add("cert_key_lt_1024", F, fmt.Sprintf("the certificate key (%s) is weaker than 1024-bit RSA: grade F", desc))
	case k.KeyStrength < 2048:
		g.add("cert_key_lt_2048", B, fmt.Sprintf("the certificate key (%s) is weaker than 2048-bit RSA: grade capped at B", desc))
	}
	for _, p := range k.Problems {
		if info := certProblemInfo[p]; info.letter == F {
			g.add("cert_"+string(p), F, info.text+": grade F")
		}
	}
}

// certTrust replaces the letter with T or M for trust problems; T wins
// over M because a mismatch matters little on an untrusted chain.
func (g *grader) certTrust() {
	var sawT, sawM bool
	for _, p := range g.in.Cert.Problems {
		info, ok := certProblemInfo[p]
		switch {
		case !ok:
			g.add("cert_unknown_problem", T, fmt.Sprintf("unrecognised certificate problem %q: treated as not trusted", p))
			sawT = true
		case info.letter == T:
			g.add("cert_"+string(p), T, info.text+": grade T (not trusted)")
			sawT = true
		case info.letter == M:
			g.add("cert_"+string(p), M, info.text+": grade M (mismatch)")
			sawM = true
		}
	}
	switch {
	case sawT:
		g.res.Letter = T
	case sawM:
		g.res.Letter = M
	}
}
