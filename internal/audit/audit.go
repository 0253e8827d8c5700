// Package audit owns the audit trail: the event record, the hash chain that
// links each event to the one before it, the signed checkpoints that pin
// the chain's head, and the verification that walks both and names the
// first event that was modified, deleted, inserted or reordered.
//
// Events are appended by the store in the same transaction as the change
// they describe; this package defines what an event is and how its hash is
// computed, so the writer and the verifier cannot disagree.
package audit

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/keys"
)

// Outcome says how the audited action ended.
type Outcome string

// Outcomes.
const (
	Success Outcome = "success"
	// Denied marks a refused request: unauthenticated, forbidden or invalid.
	Denied Outcome = "denied"
	// Failed marks an authorised request the server could not complete.
	Failed Outcome = "failed"
)

// HashSize is the size of an event hash.
const HashSize = sha256.Size

// Hash is a SHA-256 chain hash; it prints and marshals as hex.
type Hash []byte

func (h Hash) String() string { return hex.EncodeToString(h) }

// MarshalText encodes h as hex.
func (h Hash) MarshalText() ([]byte, error) { return []byte(hex.EncodeToString(h)), nil }

// UnmarshalText decodes hex.
func (h *Hash) UnmarshalText(b []byte) error {
	v, err := hex.DecodeString(string(b))
	if err != nil {
		return fmt.Errorf("audit: hash: %w", err)
	}
	*h = v
	return nil
}

// Genesis is the previous hash of the first event.
func Genesis() Hash { return make(Hash, HashSize) }

// Event is one audit record.
type Event struct {
	Seq       int64     `json:"seq"`
	Time      time.Time `json:"time"`
	Principal string    `json:"principal"`
	// PrincipalID is the acting principal's ID ("system" for the server,
	// "" for an anonymous caller and for events recorded before IDs were):
	// names are for reading, the ID says who it was.
	PrincipalID string  `json:"principal_id,omitempty"`
	Source      string  `json:"source,omitempty"`
	Action      string  `json:"action"`
	Target      string  `json:"target,omitempty"`
	Outcome     Outcome `json:"outcome"`
	RequestID   string  `json:"request_id,omitempty"`
	// Details is a JSON object, stored and hashed byte for byte.
	Details  json.RawMessage `json:"details,omitempty"`
	PrevHash Hash            `json:"prev_hash,omitempty"`
	Hash     Hash            `json:"hash,omitempty"`
}

// Size limits, enforced by Normalize so an event always fits its row.
const (
	maxField = 1024
	// MaxTarget bounds an event's target: a caller-supplied path or name
	// must not make a refused request cost kilobytes of permanent log.
	MaxTarget  = 256
	maxDetails = 64 << 10
)

// ErrInvalid marks an event the store must not append.
var ErrInvalid = errors.New("audit: invalid event")

// Normalize readies e for appending: time in UTC at microsecond precision
// (what the store keeps), empty details as {}, and size limits checked.
func (e *Event) Normalize() error {
	if e.Action == "" {
		return fmt.Errorf("%w: no action", ErrInvalid)
	}
	if e.Outcome == "" {
		return fmt.Errorf("%w: %s: no outcome", ErrInvalid, e.Action)
	}
	if e.Time.IsZero() {
		return fmt.Errorf("%w: %s: no time", ErrInvalid, e.Action)
	}
	e.Time = e.Time.UTC().Truncate(time.Microsecond)
	for _, f := range []*string{&e.Principal, &e.PrincipalID, &e.Source, &e.Action, &e.RequestID} {
		*f = truncateUTF8(*f, maxField)
	}
	e.Target = truncateUTF8(e.Target, MaxTarget)
	if len(e.Details) == 0 {
		e.Details = json.RawMessage("{}")
	}
	if len(e.Details) > maxDetails {
		return fmt.Errorf("%w: %s: details are %d bytes, over %d", ErrInvalid, e.Action, len(e.Details), maxDetails)
	}
	return nil
}

// truncateUTF8 cuts s to at most n bytes, on a UTF-8 character boundary.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// anonymous is the principal of a request refused before authentication.
func anonymous(source string) authz.Principal {
	return authz.Principal{Name: "anonymous", Source: source}
}

// ComputeHash returns the chain hash of e after prev: SHA-256 over a
// domain-separated, length-prefixed encoding of prev and every field but
// Seq and the hashes. Seq is left out so that a row moved to another
// position still verifies on its own, and the broken link names it as
// reordered rather than modified.
//
// An event with a PrincipalID hashes as v2, which covers it; one without
// (recorded before IDs were, or anonymous) as v1, so old chains verify
// unchanged. Blanking the ID of a v2 event changes its hash either way.
func (e *Event) ComputeHash(prev Hash) Hash {
	fields := [...]string{e.Principal, e.Source, e.Action, e.Target, string(e.Outcome), e.RequestID, string(e.Details), e.PrincipalID}
	domain, n := "certwright audit event v2\x00", len(fields)
	if e.PrincipalID == "" {
		domain, n = "certwright audit event v1\x00", n-1
	}
	// One buffer hashed at once: an issuance event fits the stack array.
	size := len(domain) + len(prev) + 8 + 8*n
	for _, f := range fields[:n] {
		size += len(f)
	}
	var stack [512]byte
	buf := stack[:0]
	if size > len(stack) {
		buf = make([]byte, 0, size)
	}
	buf = append(buf, domain...)
	buf = append(buf, prev...)
	buf = binary.BigEndian.AppendUint64(buf, uint64(e.Time.UTC().UnixMicro()))
	for _, f := range fields[:n] {
		buf = binary.BigEndian.AppendUint64(buf, uint64(len(f)))
		buf = append(buf, f...)
	}
	sum := sha256.Sum256(buf)
	return Hash(sum[:])
}

// New returns a successful event by p at now. details is marshalled to a
// JSON object (nil for none).
func New(p authz.Principal, now time.Time, action, target string, details any) Event {
	e := Event{
		Time: now, Principal: p.Name, PrincipalID: p.ID, Source: p.Source, Action: action, Target: target,
		Outcome: Success, RequestID: p.RequestID,
	}
	if details != nil {
		b, err := json.Marshal(details)
		if err != nil {
			b, _ = json.Marshal(map[string]string{"marshal_error": err.Error()})
		}
		e.Details = b
	}
	if e.Principal == "" {
		e.Principal = "anonymous"
	}
	return e
}

// Checkpoint pins the chain: the hash of event Seq, signed by the audit
// key. Checkpoints chain to each other as events do: Counter is the
// checkpoint's position among all checkpoints (from 1) and PrevHash the
// Digest of the one before it (Genesis for the first), both signed, so a
// deleted or replaced checkpoint breaks the link of the next one.
//
// A checkpoint written before checkpoints were chained has Counter 0 and
// no PrevHash, and is signed over the older message; such checkpoints can
// only precede chained ones.
type Checkpoint struct {
	Seq       int64     `json:"seq"`
	Hash      Hash      `json:"hash"`
	Time      time.Time `json:"time"`
	KeyID     string    `json:"key_id"`
	Counter   int64     `json:"counter,omitempty"`
	PrevHash  Hash      `json:"prev_hash,omitempty"`
	Signature []byte    `json:"signature"`
}

// Chained reports whether c links to the checkpoint before it (it was
// written by a version that chains checkpoints).
func (c *Checkpoint) Chained() bool { return c.Counter > 0 }

// Message is what the audit key signs (SHA-256 of it, for ECDSA).
func (c *Checkpoint) Message() []byte {
	if !c.Chained() {
		return []byte("certwright audit checkpoint v1\n" +
			strconv.FormatInt(c.Seq, 10) + "\n" +
			hex.EncodeToString(c.Hash) + "\n" +
			strconv.FormatInt(c.Time.UTC().UnixMicro(), 10) + "\n" +
			c.KeyID + "\n")
	}
	return []byte("certwright audit checkpoint v2\n" +
		strconv.FormatInt(c.Counter, 10) + "\n" +
		strconv.FormatInt(c.Seq, 10) + "\n" +
		hex.EncodeToString(c.Hash) + "\n" +
		strconv.FormatInt(c.Time.UTC().UnixMicro(), 10) + "\n" +
		c.KeyID + "\n" +
		hex.EncodeToString(c.PrevHash) + "\n")
}

// Digest identifies c: SHA-256 over its signed message. The next
// checkpoint's PrevHash and the external anchor refer to a checkpoint by
// it.
func (c *Checkpoint) Digest() Hash {
	h := sha256.New()
	h.Write([]byte("certwright audit checkpoint digest\x00"))
	h.Write(c.Message())
	return h.Sum(nil)
}

// Key is an audit signing key: its wrapped private half (by reference) and
// its public key, which verification trusts only after unwrapping the
// private half with the key-encryption key and comparing.
type Key struct {
	ID        string    `json:"id"`
	Key       keys.Ref  `json:"-"`
	PublicKey []byte    `json:"public_key"` // SubjectPublicKeyInfo DER
	CreatedAt time.Time `json:"created_at"`
}
