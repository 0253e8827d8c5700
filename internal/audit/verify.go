package audit

import (
	"bytes"
	"cmp"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"

	"github.com/certwright/certwright/internal/keys"
)

// VerifySource is the storage Verify reads. Verify does all its reads
// through one Snapshot, so that an append committed while it runs is seen
// whole (its events and the head that records them) or not at all: read
// from different states, a concurrent append would look like tampering
// (events after the last one read "deleted", or a head "rolled back").
type VerifySource interface {
	// ReadAuditSnapshot calls fn with a Snapshot whose reads all see the
	// same committed state of the database, and returns fn's error.
	ReadAuditSnapshot(ctx context.Context, fn func(Snapshot) error) error
}

// Snapshot reads the audit log as of one committed state: the events in
// seq order, the head, the checkpoints and the keys that signed them.
type Snapshot interface {
	// EachAuditEvent calls fn for every event with seq >= from, in seq
	// order, without loading them all at once.
	EachAuditEvent(ctx context.Context, from int64, fn func(*Event) error) error
	AuditHead(ctx context.Context) (seq int64, hash Hash, err error)
	// ListCheckpoints returns every checkpoint, seq ascending.
	ListCheckpoints(ctx context.Context) ([]*Checkpoint, error)
	ListAuditKeys(ctx context.Context) ([]*Key, error)
}

// Signers unwraps audit keys; keys.Provider and *keys.SignerCache satisfy it.
type Signers interface {
	Signer(ctx context.Context, ref keys.Ref, purpose keys.Purpose) (crypto.Signer, error)
}

// Problem kinds, as found in Problem.Kind.
const (
	KindModified   = "modified"
	KindDeleted    = "deleted"
	KindInserted   = "inserted"
	KindReordered  = "reordered"
	KindTruncated  = "truncated"
	KindCheckpoint = "checkpoint"
	// KindAnchor: the checkpoint kept outside the database (the anchor)
	// is missing from the database or differs from the one there.
	KindAnchor = "anchor"
)

// Problem is the first sign of tampering Verify found.
type Problem struct {
	// Seq is the event the problem is about: the modified, missing,
	// inserted or misplaced one, or the checkpoint's seq.
	Seq int64 `json:"seq"`
	// Kind is one of modified, deleted, inserted, reordered, truncated,
	// checkpoint, anchor.
	Kind    string `json:"kind"`
	Message string `json:"message"`
}

func (p *Problem) String() string { return p.Message }

// Report is the outcome of Verify.
type Report struct {
	// Intact is true when no problem was found.
	Intact bool `json:"intact"`
	// Events is the number of events read.
	Events int64 `json:"events"`
	// HeadSeq and HeadHash are the last event's, as read from the log.
	HeadSeq  int64 `json:"head_seq"`
	HeadHash Hash  `json:"head_hash"`
	// Checkpoints is the number of checkpoints; LastCheckpoint the seq the
	// last one pins (0 when there is none).
	Checkpoints    int   `json:"checkpoints"`
	LastCheckpoint int64 `json:"last_checkpoint"`
	// Unanchored counts the events after the last checkpoint: a deletion
	// of those, with the head rewritten to match, cannot be detected.
	Unanchored int64 `json:"unanchored"`
	// Anchors names the external anchors checked, with the checkpoint
	// each one records.
	Anchors []string `json:"anchors,omitempty"`
	// Problem is the first problem found, nil when Intact.
	Problem *Problem `json:"problem,omitempty"`
}

// Verify walks the whole chain and every checkpoint. Tampering is reported
// in Report.Problem (the first problem in seq order, then the end-of-chain
// checks); the error is for I/O failures only.
//
// Checkpoints must chain to each other, and every anchor (the latest
// checkpoint as kept outside the database; read them BEFORE calling Verify,
// so that a checkpoint signed meanwhile cannot put them ahead of what
// Verify reads) must be among them at its position.
//
// The chain is read as a stream, so memory does not grow with the log.
// Every read is made in one snapshot (see VerifySource), so appends
// committed meanwhile are never reported as tampering.
func Verify(ctx context.Context, src VerifySource, signers Signers, anchors ...Anchor) (*Report, error) {
	var r *Report
	err := src.ReadAuditSnapshot(ctx, func(snap Snapshot) error {
		var err error
		r, err = verify(ctx, snap, signers, anchors)
		return err
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// verify is Verify on one snapshot.
func verify(ctx context.Context, src Snapshot, signers Signers, anchors []Anchor) (*Report, error) {
	cps, err := src.ListCheckpoints(ctx)
	if err != nil {
		return nil, fmt.Errorf("audit: verify: checkpoints: %w", err)
	}
	cps = slices.Clone(cps)
	slices.SortStableFunc(cps, func(a, b *Checkpoint) int { return cmp.Compare(a.Seq, b.Seq) })
	ks, err := src.ListAuditKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("audit: verify: keys: %w", err)
	}

	v := &verifier{}
	// A checkpoint whose signature cannot be trusted is itself a problem,
	// and one that must not be believed about truncation either.
	trusted, pubs, err := checkSignatures(ctx, cps, ks, signers, v.consider)
	if err != nil {
		return nil, err
	}
	checkCheckpointChain(cps, v.consider)
	for i := range anchors {
		checkAnchor(&anchors[i], cps, pubs, v.consider)
	}

	next := 0 // index of the next checkpoint to match against the chain
	err = src.EachAuditEvent(ctx, 0, func(ev *Event) error {
		v.step(ev)
		for next < len(cps) && cps[next].Seq <= ev.Seq {
			c := cps[next]
			next++
			if !trusted[c] {
				continue
			}
			if c.Seq == ev.Seq && !bytes.Equal(c.Hash, ev.Hash) {
				v.consider(&Problem{Seq: c.Seq, Kind: KindCheckpoint, Message: fmt.Sprintf(
					"event(s) at or before %d were changed after checkpoint %d was signed: the chain's hash at %d is %s, the checkpoint's %s",
					c.Seq, c.Seq, c.Seq, shortHash(ev.Hash), shortHash(c.Hash))})
			}
			// A checkpoint whose event is missing falls in a gap the
			// walk reports as deleted.
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("audit: verify: events: %w", err)
	}

	r := &Report{
		Events:      v.events,
		HeadSeq:     v.lastSeq,
		HeadHash:    Genesis(),
		Checkpoints: len(cps),
	}
	if v.events > 0 {
		r.HeadHash = Hash(bytes.Clone(v.prev[:v.prevLen]))
	}
	if len(cps) > 0 {
		r.LastCheckpoint = cps[len(cps)-1].Seq
	}
	r.Unanchored = max(0, v.lastSeq-r.LastCheckpoint)
	for _, a := range anchors {
		r.Anchors = append(r.Anchors, fmt.Sprintf("%s: checkpoint #%d at event %d", a.Source, a.Position, a.Checkpoint.Seq))
	}

	// End-of-chain checks, only when the walk found nothing.
	if v.first == nil {
		for _, c := range cps[next:] {
			if trusted[c] {
				v.consider(&Problem{Seq: v.lastSeq + 1, Kind: KindTruncated, Message: fmt.Sprintf(
					"events after %d were deleted: checkpoint %d covers them", v.lastSeq, c.Seq)})
				break
			}
		}
	}
	if v.first == nil {
		headSeq, headHash, err := src.AuditHead(ctx)
		if err != nil {
			return nil, fmt.Errorf("audit: verify: head: %w", err)
		}
		if p := checkHead(headSeq, headHash, v.lastSeq, r.HeadHash); p != nil {
			v.consider(p)
		}
	}
	r.Problem = v.first
	r.Intact = r.Problem == nil
	return r, nil
}

// checkHead compares the recorded head with the last event read.
func checkHead(headSeq int64, headHash Hash, lastSeq int64, lastHash Hash) *Problem {
	if lastSeq == 0 {
		lastHash = Genesis()
	}
	switch {
	case headSeq > lastSeq:
		return &Problem{Seq: lastSeq + 1, Kind: KindTruncated, Message: fmt.Sprintf(
			"events after %d were deleted: the audit head records event %d", lastSeq, headSeq)}
	case headSeq < lastSeq:
		return &Problem{Seq: headSeq + 1, Kind: KindModified, Message: fmt.Sprintf(
			"the audit head records event %d but the log runs to event %d: events were added outside the store or the head was rolled back",
			headSeq, lastSeq)}
	case !bytes.Equal(headHash, lastHash):
		return &Problem{Seq: lastSeq, Kind: KindModified, Message: fmt.Sprintf(
			"the audit head does not match event %d: the head or the event was modified", lastSeq)}
	}
	return nil
}

// verifier holds the walk's state: the last two hashes, copied so the
// source may reuse its buffers between calls.
type verifier struct {
	events   int64
	lastSeq  int64
	prev     [HashSize]byte // hash of event lastSeq (Genesis before the first)
	prevLen  int
	prev2    [HashSize]byte // hash of event lastSeq-1
	prev2Len int
	// broken is set at the first chain problem: later ones are
	// consequences of it.
	broken bool
	first  *Problem
}

// step checks one event against its own hash and the event before it.
func (v *verifier) step(ev *Event) {
	v.events++
	expected := v.lastSeq + 1
	if v.lastSeq == 0 {
		v.prevLen = HashSize // Genesis: all zeros
	}
	if !v.broken {
		v.broken = true // unless no case below matches
		switch {
		case ev.Seq > expected:
			v.consider(&Problem{Seq: expected, Kind: KindDeleted, Message: fmt.Sprintf(
				"event %d is missing (deleted)", expected)})
		case ev.Seq < expected:
			v.consider(&Problem{Seq: ev.Seq, Kind: KindReordered, Message: fmt.Sprintf(
				"event %d appears after event %d: events were reordered", ev.Seq, v.lastSeq)})
		case !bytes.Equal(ev.ComputeHash(ev.PrevHash), ev.Hash):
			v.consider(&Problem{Seq: ev.Seq, Kind: KindModified, Message: fmt.Sprintf(
				"event %d was modified: its hash does not match its contents", ev.Seq)})
		case !bytes.Equal(ev.PrevHash, v.prev[:v.prevLen]):
			if ev.Seq >= 2 && bytes.Equal(ev.PrevHash, v.twoBack(ev.Seq)) {
				v.consider(&Problem{Seq: ev.Seq - 1, Kind: KindInserted, Message: fmt.Sprintf(
					"event %d was inserted: event %d follows event %d", ev.Seq-1, ev.Seq, ev.Seq-2)})
			} else {
				v.consider(&Problem{Seq: ev.Seq, Kind: KindReordered, Message: fmt.Sprintf(
					"event %d does not follow event %d: events were reordered, inserted or deleted", ev.Seq, ev.Seq-1)})
			}
		default:
			v.broken = false
		}
	}
	v.prev2, v.prev2Len = v.prev, v.prevLen
	v.prevLen = copy(v.prev[:], ev.Hash)
	if len(ev.Hash) > HashSize {
		v.prevLen = 0 // an oversized hash never equals a real one
	}
	v.lastSeq = ev.Seq
}

// twoBack is the hash of event seq-2: Genesis for seq 2.
func (v *verifier) twoBack(seq int64) []byte {
	if seq == 2 {
		return Genesis()
	}
	return v.prev2[:v.prev2Len]
}

// consider keeps p if it comes before the problem found so far.
func (v *verifier) consider(p *Problem) {
	if v.first == nil || p.Seq < v.first.Seq {
		v.first = p
	}
}

// checkSignatures verifies every checkpoint's signature with a key whose
// public half is trusted only after its wrapped private half unwraps to
// the same key. It reports untrusted checkpoints through problem and
// returns the trusted set and the trusted public keys by key ID.
func checkSignatures(ctx context.Context, cps []*Checkpoint, ks []*Key, signers Signers, problem func(*Problem)) (map[*Checkpoint]bool, map[string]crypto.PublicKey, error) {
	byID := make(map[string]*Key, len(ks))
	for _, k := range ks {
		byID[k.ID] = k
	}
	type keyState struct {
		pub crypto.PublicKey
		why string // non-empty when the key cannot be trusted
	}
	states := map[string]*keyState{}
	trusted := make(map[*Checkpoint]bool, len(cps))
	for _, c := range cps {
		st, ok := states[c.KeyID]
		if !ok {
			st = &keyState{}
			k := byID[c.KeyID]
			if k == nil {
				st.why = fmt.Sprintf("its key %q does not exist", c.KeyID)
			} else {
				s, err := trustKey(ctx, k, signers)
				if err != nil {
					if ctxErr := ctx.Err(); ctxErr != nil {
						return nil, nil, fmt.Errorf("audit: verify: %w", ctxErr)
					}
					st.why = err.Error()
				} else {
					st.pub = s.Public()
				}
			}
			states[c.KeyID] = st
		}
		switch {
		case st.why != "":
			problem(&Problem{Seq: c.Seq, Kind: KindCheckpoint, Message: fmt.Sprintf(
				"checkpoint %d cannot be trusted: %s", c.Seq, st.why)})
		case c.Seq < 1:
			problem(&Problem{Seq: c.Seq, Kind: KindCheckpoint, Message: fmt.Sprintf(
				"checkpoint %d names no event", c.Seq)})
		case !verifySignature(st.pub, c.Message(), c.Signature):
			problem(&Problem{Seq: c.Seq, Kind: KindCheckpoint, Message: fmt.Sprintf(
				"checkpoint %d has an invalid signature: it was altered or forged", c.Seq)})
		default:
			trusted[c] = true
		}
	}
	// Keys no checkpoint names still authenticate an anchor.
	pubs := map[string]crypto.PublicKey{}
	for id, st := range states {
		if st.why == "" {
			pubs[id] = st.pub
		}
	}
	for _, k := range ks {
		if _, done := states[k.ID]; done {
			continue
		}
		s, err := trustKey(ctx, k, signers)
		if err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return nil, nil, fmt.Errorf("audit: verify: %w", ctxErr)
			}
			continue
		}
		pubs[k.ID] = s.Public()
	}
	return trusted, pubs, nil
}

// checkCheckpointChain checks that every chained checkpoint sits at the
// position its counter says and links to the one before it, and that no
// unchained (older) checkpoint follows a chained one. cps is sorted by seq.
func checkCheckpointChain(cps []*Checkpoint, problem func(*Problem)) {
	chained := false
	for i, c := range cps {
		if !c.Chained() {
			if chained {
				problem(&Problem{Seq: c.Seq, Kind: KindCheckpoint, Message: fmt.Sprintf(
					"checkpoint at event %d carries no link to the checkpoint before it, but follows linked checkpoints: it was inserted", c.Seq)})
				return
			}
			continue
		}
		chained = true
		prev := Genesis()
		if i > 0 {
			prev = cps[i-1].Digest()
		}
		switch {
		case c.Counter != int64(i+1):
			problem(&Problem{Seq: c.Seq, Kind: KindCheckpoint, Message: fmt.Sprintf(
				"checkpoint #%d (event %d) is number %d in the database: checkpoints before it were deleted or inserted",
				c.Counter, c.Seq, i+1)})
			return
		case !bytes.Equal(c.PrevHash, prev):
			problem(&Problem{Seq: c.Seq, Kind: KindCheckpoint, Message: fmt.Sprintf(
				"checkpoint #%d (event %d) does not link to the checkpoint before it: checkpoints were deleted or replaced",
				c.Counter, c.Seq)})
			return
		}
	}
}

// checkAnchor checks that the database's checkpoints (cps, sorted by seq)
// hold the anchored checkpoint at its position, and that the anchor was
// signed by a trusted audit key.
func checkAnchor(a *Anchor, cps []*Checkpoint, pubs map[string]crypto.PublicKey, problem func(*Problem)) {
	ac := &a.Checkpoint
	pub, ok := pubs[ac.KeyID]
	switch {
	case a.Position < 1:
		problem(&Problem{Seq: ac.Seq, Kind: KindAnchor, Message: fmt.Sprintf(
			"the external anchor (%s) names no checkpoint position", a.Source)})
		return
	case !ok:
		problem(&Problem{Seq: ac.Seq, Kind: KindAnchor, Message: fmt.Sprintf(
			"the external anchor (%s) is signed by audit key %q, which the database does not hold (or holds replaced): the audit keys were changed",
			a.Source, ac.KeyID)})
		return
	case !verifySignature(pub, ac.Message(), ac.Signature):
		problem(&Problem{Seq: ac.Seq, Kind: KindAnchor, Message: fmt.Sprintf(
			"the external anchor (%s) has an invalid signature: it was altered", a.Source)})
		return
	}
	if int64(len(cps)) < a.Position {
		last := "none"
		if len(cps) > 0 {
			last = fmt.Sprintf("the last at event %d", cps[len(cps)-1].Seq)
		}
		problem(&Problem{Seq: ac.Seq, Kind: KindAnchor, Message: fmt.Sprintf(
			"the external anchor (%s) records checkpoint #%d at event %d, but the database holds %d checkpoint(s) (%s): checkpoints were deleted",
			a.Source, a.Position, ac.Seq, len(cps), last)})
		return
	}
	if got := cps[a.Position-1]; !bytes.Equal(got.Digest(), ac.Digest()) {
		problem(&Problem{Seq: ac.Seq, Kind: KindAnchor, Message: fmt.Sprintf(
			"the external anchor (%s) records checkpoint #%d at event %d, but the database's checkpoint #%d (event %d) is a different one: checkpoints were deleted or replaced",
			a.Source, a.Position, ac.Seq, a.Position, got.Seq)})
	}
}

// trustKey unwraps k's private half and returns it if its public key
// matches the stored one.
func trustKey(ctx context.Context, k *Key, signers Signers) (crypto.Signer, error) {
	s, err := signers.Signer(ctx, k.Key, keys.AuditPurpose(k.ID))
	if err != nil {
		return nil, fmt.Errorf("audit key %s cannot be unwrapped: %w", k.ID, err)
	}
	der, err := x509.MarshalPKIXPublicKey(s.Public())
	if err != nil {
		return nil, fmt.Errorf("audit key %s: %w", k.ID, err)
	}
	if !bytes.Equal(der, k.PublicKey) {
		return nil, fmt.Errorf("audit key %s: %w", k.ID, errKeyReplaced)
	}
	return s, nil
}

var errKeyReplaced = errors.New("its stored public key does not match its private key (the key record was replaced)")

// signCheckpoint signs c.Message(): ECDSA over its SHA-256 digest (ASN.1),
// Ed25519 over the message itself.
func signCheckpoint(s crypto.Signer, c *Checkpoint) ([]byte, error) {
	msg := c.Message()
	if _, ok := s.Public().(ed25519.PublicKey); ok {
		return s.Sign(rand.Reader, msg, crypto.Hash(0))
	}
	sum := sha256.Sum256(msg)
	return s.Sign(rand.Reader, sum[:], crypto.SHA256)
}

// verifySignature is the counterpart of signCheckpoint.
func verifySignature(pub crypto.PublicKey, msg, sig []byte) bool {
	switch pub := pub.(type) {
	case *ecdsa.PublicKey:
		sum := sha256.Sum256(msg)
		return ecdsa.VerifyASN1(pub, sum[:], sig)
	case ed25519.PublicKey:
		return ed25519.Verify(pub, msg, sig)
	}
	return false
}

func shortHash(h Hash) string {
	s := h.String()
	if len(s) > 16 {
		return s[:16] + "…"
	}
	return s
}

// ActionVerify and VerifyTarget are the action and target of the event
// recording a verification (a refused request for one is recorded with
// the same action, its path as the target and a denied outcome).
const (
	ActionVerify = "audit.verify"
	VerifyTarget = "audit log"
)
