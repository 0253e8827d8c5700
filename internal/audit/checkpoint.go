package audit

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/keys"
	"github.com/certwright/certwright/internal/pki"
)

// CheckpointStore is the storage the Checkpointer needs.
type CheckpointStore interface {
	AppendAudit(ctx context.Context, evs ...Event) error
	// EachAuditEvent calls fn for every event with seq >= from, in seq order.
	EachAuditEvent(ctx context.Context, from int64, fn func(*Event) error) error
	AuditHead(ctx context.Context) (seq int64, hash Hash, err error)
	InsertCheckpoint(ctx context.Context, c *Checkpoint) error
	// ListCheckpoints returns every checkpoint, seq ascending. The
	// Checkpointer calls it only to tell "no checkpoint yet" from a
	// failure of LastCheckpoint, whose not-found error this package
	// cannot name.
	ListCheckpoints(ctx context.Context) ([]*Checkpoint, error)
	LastCheckpoint(ctx context.Context) (*Checkpoint, error)
	// CheckpointAt returns the checkpoint at event seq, and an error when
	// there is none.
	CheckpointAt(ctx context.Context, seq int64) (*Checkpoint, error)
	CreateAuditKey(ctx context.Context, k *Key) error
	ListAuditKeys(ctx context.Context) ([]*Key, error)
}

// CheckpointConfig configures a Checkpointer. Zero durations and counts
// take the defaults.
type CheckpointConfig struct {
	Clock clock.Clock  // nil: the system clock
	Log   *slog.Logger // nil: discard
	// Every signs after this many new events (default 1000).
	Every int64
	// Interval signs when this long has passed since the last checkpoint
	// and there are new events (default 5m).
	Interval time.Duration
	// Poll is how often Run looks at the head (default 1s).
	Poll time.Duration
	// Anchor keeps the latest checkpoint outside the database (nil: no
	// external anchor). The Checkpointer refuses to sign a chain that
	// does not contain the anchored checkpoint, and anchors every
	// checkpoint it signs.
	Anchor AnchorStore
}

// Defaults for CheckpointConfig.
const (
	DefaultCheckpointEvery    = 1000
	DefaultCheckpointInterval = 5 * time.Minute
	DefaultCheckpointPoll     = time.Second
)

// Actions this package records.
const (
	ActionKeyCreate = "audit.key.create"
)

// KeyAlgorithm is the algorithm of audit keys.
const KeyAlgorithm = pki.ECDSAP256

// finalTimeout bounds the checkpoint Run writes after its context ends.
const finalTimeout = 10 * time.Second

// ErrChainBroken is returned by Checkpoint when the events since the last
// checkpoint do not chain from it: signing would vouch for tampering.
var ErrChainBroken = errors.New("audit: the chain does not extend the last checkpoint")

// Checkpointer signs the chain's head with the audit key. It is safe for
// concurrent use; several replicas may run one each against the same store.
type Checkpointer struct {
	cfg CheckpointConfig
	st  CheckpointStore
	kp  keys.Provider

	mu     sync.Mutex // serialises Checkpoint, EnsureKey and CheckAnchor
	key    *Key
	signer crypto.Signer
	// anchor is the anchor as last loaded or saved; anchorLoaded says
	// whether it was loaded (nil then means there is none).
	anchor       *Anchor
	anchorLoaded bool
}

// NewCheckpointer returns a Checkpointer that keeps its key in kp (wrapped
// by the key-encryption key) and its checkpoints in st.
func NewCheckpointer(cfg CheckpointConfig, st CheckpointStore, kp keys.Provider) (*Checkpointer, error) {
	if st == nil {
		return nil, errors.New("audit: checkpointer: no store")
	}
	if kp == nil {
		return nil, errors.New("audit: checkpointer: no key provider")
	}
	if cfg.Every < 0 || cfg.Interval < 0 || cfg.Poll < 0 {
		return nil, fmt.Errorf("audit: checkpointer: negative setting (every %d, interval %s, poll %s)", cfg.Every, cfg.Interval, cfg.Poll)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Every == 0 {
		cfg.Every = DefaultCheckpointEvery
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultCheckpointInterval
	}
	if cfg.Poll == 0 {
		cfg.Poll = DefaultCheckpointPoll
	}
	cfg.Log = cfg.Log.With("component", "audit.checkpoint")
	return &Checkpointer{cfg: cfg, st: st, kp: kp}, nil
}

// EnsureKey returns the current audit key, generating one (ECDSA P-256,
// wrapped by the provider's KEK) on first use, storing it and recording
// an audit.key.create event. A stored key is used only after its private
// half unwraps to its recorded public key.
func (c *Checkpointer) EnsureKey(ctx context.Context) (*Key, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k, _, err := c.ensureKey(ctx)
	return k, err
}

func (c *Checkpointer) ensureKey(ctx context.Context) (*Key, crypto.Signer, error) {
	if c.key != nil {
		return c.key, c.signer, nil
	}
	ks, err := c.st.ListAuditKeys(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("audit: keys: %w", err)
	}
	var cur *Key
	for _, k := range ks {
		if cur == nil || k.CreatedAt.After(cur.CreatedAt) || (k.CreatedAt.Equal(cur.CreatedAt) && k.ID > cur.ID) {
			cur = k
		}
	}
	if cur != nil {
		s, err := trustKey(ctx, cur, c.kp)
		if err != nil {
			return nil, nil, fmt.Errorf("audit: refusing to sign: %w", err)
		}
		c.key, c.signer = cur, s
		return cur, s, nil
	}
	return c.createKey(ctx)
}

func (c *Checkpointer) createKey(ctx context.Context) (*Key, crypto.Signer, error) {
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, nil, fmt.Errorf("audit: key id: %w", err)
	}
	ref, s, err := c.kp.Generate(ctx, KeyAlgorithm, keys.AuditPurpose(hex.EncodeToString(id[:])))
	if err != nil {
		return nil, nil, fmt.Errorf("audit: generate key: %w", err)
	}
	der, err := x509.MarshalPKIXPublicKey(s.Public())
	if err != nil {
		return nil, nil, fmt.Errorf("audit: generate key: %w", err)
	}
	now := c.cfg.Clock.Now().UTC().Truncate(time.Microsecond)
	k := &Key{ID: hex.EncodeToString(id[:]), Key: ref, PublicKey: der, CreatedAt: now}
	if err := c.st.CreateAuditKey(ctx, k); err != nil {
		return nil, nil, fmt.Errorf("audit: store key: %w", err)
	}
	details, err := json.Marshal(map[string]string{
		"algorithm": string(ref.Algorithm), "provider": ref.Provider, "key_ref": ref.ID,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("audit: key event: %w", err)
	}
	ev := Event{
		Time: now, Principal: authz.System().Name, PrincipalID: authz.System().ID, Action: ActionKeyCreate, Target: k.ID,
		Outcome: Success, Details: details,
	}
	if err := ev.Normalize(); err != nil {
		return nil, nil, err
	}
	// The key is already stored: a failure here leaves an unrecorded key,
	// which the next checkpoint still uses and verify still trusts.
	if err := c.st.AppendAudit(ctx, ev); err != nil {
		return nil, nil, fmt.Errorf("audit: record key creation: %w", err)
	}
	c.cfg.Log.Info("audit key created", "key_id", k.ID, "algorithm", string(ref.Algorithm))
	c.key, c.signer = k, s
	return k, s, nil
}

// Checkpoint signs the current head if it is newer than the last
// checkpoint; it returns nil, nil when there is nothing new. Before
// signing it checks that the events since the last checkpoint chain from
// it, and returns an error wrapping ErrChainBroken if they do not.
func (c *Checkpointer) Checkpoint(ctx context.Context) (*Checkpoint, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	last, err := c.lastCheckpoint(ctx)
	if err != nil {
		return nil, err
	}
	seq, _, err := c.st.AuditHead(ctx)
	if err != nil {
		return nil, fmt.Errorf("audit: checkpoint: head: %w", err)
	}
	if seq == 0 || (last != nil && seq <= last.Seq) {
		return nil, nil
	}
	key, signer, err := c.ensureKey(ctx)
	if err != nil {
		return nil, err
	}
	// Creating the key appended an event: read the head again so the
	// checkpoint covers it.
	seq, hash, err := c.st.AuditHead(ctx)
	if err != nil {
		return nil, fmt.Errorf("audit: checkpoint: head: %w", err)
	}
	if err := c.checkExtends(ctx, last, seq, hash); err != nil {
		return nil, err
	}
	pos, err := c.position(ctx, last)
	if err != nil {
		return nil, err
	}
	if err := c.checkAnchor(ctx, last, pos); err != nil {
		return nil, err
	}
	cp := &Checkpoint{
		Seq: seq, Hash: hash, Time: c.cfg.Clock.Now().UTC().Truncate(time.Microsecond), KeyID: key.ID,
		Counter: pos + 1, PrevHash: Genesis(),
	}
	if last != nil {
		cp.PrevHash = last.Digest()
	}
	if cp.Signature, err = signCheckpoint(signer, cp); err != nil {
		return nil, fmt.Errorf("audit: checkpoint: sign: %w", err)
	}
	if err := c.st.InsertCheckpoint(ctx, cp); err != nil {
		// Another replica may have signed the same head, or the same
		// position, first.
		if other, lerr := c.lastCheckpoint(ctx); lerr == nil && other != nil && (other.Seq >= cp.Seq || other.Counter >= cp.Counter) {
			return nil, nil
		}
		return nil, fmt.Errorf("audit: checkpoint %d: %w", cp.Seq, err)
	}
	c.cfg.Log.Debug("audit checkpoint", "seq", cp.Seq, "counter", cp.Counter, "key_id", cp.KeyID)
	// The checkpoint is in the database: an anchor that fails to follow
	// lags behind, which is safe; it is retried with the next one.
	if err := c.saveAnchor(ctx, &Anchor{Position: cp.Counter, Checkpoint: *cp}); err != nil {
		c.cfg.Log.Error("audit anchor not updated", "seq", cp.Seq, "counter", cp.Counter, "err", err)
	}
	return cp, nil
}

// position returns the position of last among all checkpoints (0 for
// none): its counter when it is chained, else (the first chained
// checkpoint after an upgrade) the number of checkpoints.
func (c *Checkpointer) position(ctx context.Context, last *Checkpoint) (int64, error) {
	if last == nil {
		return 0, nil
	}
	if last.Chained() {
		return last.Counter, nil
	}
	all, err := c.st.ListCheckpoints(ctx)
	if err != nil {
		return 0, fmt.Errorf("audit: checkpoint: %w", err)
	}
	return int64(len(all)), nil
}

// loadAnchor returns the anchor, loading it on first use.
func (c *Checkpointer) loadAnchor(ctx context.Context) (*Anchor, error) {
	if c.cfg.Anchor == nil || c.anchorLoaded {
		return c.anchor, nil
	}
	a, err := c.cfg.Anchor.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrAnchor, err)
	}
	c.anchor, c.anchorLoaded = a, true
	return a, nil
}

func (c *Checkpointer) saveAnchor(ctx context.Context, a *Anchor) error {
	if c.cfg.Anchor == nil {
		return nil
	}
	if err := c.cfg.Anchor.Save(ctx, a); err != nil {
		return err
	}
	c.anchor, c.anchorLoaded = a, true
	return nil
}

// checkAnchor checks that the database's checkpoints, the last of which
// is last at position pos, still hold the anchored checkpoint: if they do
// not, checkpoints were deleted or replaced, and signing the chain's head
// would vouch for whatever replaced them.
func (c *Checkpointer) checkAnchor(ctx context.Context, last *Checkpoint, pos int64) error {
	a, err := c.loadAnchor(ctx)
	if err != nil || a == nil {
		return err
	}
	ac := &a.Checkpoint
	if last == nil || pos < a.Position || last.Seq < ac.Seq {
		have := "no checkpoint"
		if last != nil {
			have = fmt.Sprintf("%d checkpoint(s), the last at event %d", pos, last.Seq)
		}
		return fmt.Errorf("%w: the anchor records checkpoint #%d at event %d, but the database holds %s: checkpoints were deleted; refusing to sign",
			ErrAnchor, a.Position, ac.Seq, have)
	}
	got, err := c.st.CheckpointAt(ctx, ac.Seq)
	if err != nil {
		return fmt.Errorf("%w: the anchored checkpoint #%d at event %d is not in the database (%w); refusing to sign", ErrAnchor, a.Position, ac.Seq, err)
	}
	if !bytes.Equal(got.Digest(), ac.Digest()) {
		return fmt.Errorf("%w: the database's checkpoint at event %d is not the anchored checkpoint #%d: checkpoints were replaced; refusing to sign",
			ErrAnchor, ac.Seq, a.Position)
	}
	return nil
}

// CheckAnchor checks the database's checkpoints against the external
// anchor, as Checkpoint does before signing, and returns an error wrapping
// ErrAnchor when they do not hold it. When there is no anchor yet (the
// first start of a version that keeps one) it anchors the last checkpoint
// once its signature is verified with the audit key.
func (c *Checkpointer) CheckAnchor(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cfg.Anchor == nil {
		return nil
	}
	a, err := c.loadAnchor(ctx)
	if err != nil {
		return err
	}
	last, err := c.lastCheckpoint(ctx)
	if err != nil {
		return err
	}
	pos, err := c.position(ctx, last)
	if err != nil {
		return err
	}
	if a != nil {
		return c.checkAnchor(ctx, last, pos)
	}
	if last == nil {
		return nil
	}
	key, signer, err := c.ensureKey(ctx)
	if err != nil {
		return err
	}
	if last.KeyID != key.ID || !verifySignature(signer.Public(), last.Message(), last.Signature) {
		return fmt.Errorf("%w: the last checkpoint (event %d) is not signed by the audit key; not anchoring it", ErrAnchor, last.Seq)
	}
	if err := c.saveAnchor(ctx, &Anchor{Position: pos, Checkpoint: *last}); err != nil {
		return fmt.Errorf("audit: anchor: %w", err)
	}
	c.cfg.Log.Info("audit checkpoints anchored outside the database", "seq", last.Seq, "position", pos)
	return nil
}

// checkExtends walks the events after last up to seq, checking each one's
// hash and link, and that the walk ends at hash.
func (c *Checkpointer) checkExtends(ctx context.Context, last *Checkpoint, seq int64, hash Hash) error {
	want, prev := int64(1), Genesis()
	if last != nil {
		want, prev = last.Seq+1, bytes.Clone(last.Hash)
	}
	stop := errors.New("stop")
	err := c.st.EachAuditEvent(ctx, want-1, func(ev *Event) error {
		switch {
		case ev.Seq > seq:
			return stop
		case ev.Seq < want: // the checkpointed event itself
			if last != nil && ev.Seq == last.Seq && !bytes.Equal(ev.Hash, last.Hash) {
				return fmt.Errorf("%w: event %d no longer has the hash checkpoint %d signed", ErrChainBroken, ev.Seq, last.Seq)
			}
			return nil
		case ev.Seq != want:
			return fmt.Errorf("%w: expected event %d, found %d", ErrChainBroken, want, ev.Seq)
		case !bytes.Equal(ev.PrevHash, prev):
			return fmt.Errorf("%w: event %d does not follow event %d", ErrChainBroken, ev.Seq, ev.Seq-1)
		case !bytes.Equal(ev.ComputeHash(ev.PrevHash), ev.Hash):
			return fmt.Errorf("%w: event %d was modified", ErrChainBroken, ev.Seq)
		}
		prev = append(prev[:0], ev.Hash...)
		want++
		return nil
	})
	if err != nil && !errors.Is(err, stop) {
		if errors.Is(err, ErrChainBroken) {
			return err
		}
		return fmt.Errorf("audit: checkpoint: events: %w", err)
	}
	if want-1 != seq || !bytes.Equal(prev, hash) {
		return fmt.Errorf("%w: the head (event %d) does not match the log, which ends at event %d", ErrChainBroken, seq, want-1)
	}
	return nil
}

// lastCheckpoint returns the last checkpoint, or nil when there is none.
func (c *Checkpointer) lastCheckpoint(ctx context.Context) (*Checkpoint, error) {
	last, err := c.st.LastCheckpoint(ctx)
	if err == nil {
		return last, nil
	}
	// The store says "not found" in its own words; an empty list says it
	// in ours.
	all, lerr := c.st.ListCheckpoints(ctx)
	if lerr == nil && len(all) == 0 {
		return nil, nil
	}
	return nil, fmt.Errorf("audit: last checkpoint: %w", err)
}

// Run checkpoints per the config until ctx ends, then writes a final
// checkpoint (bounded by a short timeout of its own).
func (c *Checkpointer) Run(ctx context.Context) {
	if err := c.CheckAnchor(ctx); err != nil && ctx.Err() == nil {
		c.cfg.Log.Error("audit checkpoints do not extend the external anchor: no checkpoint will be signed until this is resolved; run certwright audit verify", "err", err)
	}
	t := time.NewTicker(c.cfg.Poll)
	defer t.Stop()
	since := c.cfg.Clock.Now() // the interval counts from start-up when there is no checkpoint
	var retryAfter time.Time
	failures := 0 // consecutive store failures
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalTimeout)
			if _, err := c.Checkpoint(fctx); err != nil {
				c.cfg.Log.Error("final audit checkpoint", "err", err)
			}
			cancel()
			return
		case <-t.C:
		}
		now := c.cfg.Clock.Now()
		if now.Before(retryAfter) {
			continue
		}
		due, err := c.due(ctx, now, since)
		if err == nil && due {
			_, err = c.Checkpoint(ctx)
		}
		switch {
		case err == nil:
			failures = 0
		case ctx.Err() != nil:
		case errors.Is(err, ErrChainBroken) || errors.Is(err, ErrAnchor):
			// A broken chain stays broken: say so once an interval,
			// not once a poll.
			c.cfg.Log.Error("audit checkpoint", "err", err)
			retryAfter = now.Add(c.cfg.Interval)
		default:
			// The store failing passes: retry soon, backing off to
			// the interval, so a checkpoint is not a whole interval
			// late because of one failed write.
			failures++
			wait := retryBackoff(c.cfg.Poll, c.cfg.Interval, failures)
			c.cfg.Log.Warn("audit checkpoint failed; will retry", "err", err, "attempt", failures, "retry_in", wait.String())
			retryAfter = now.Add(wait)
		}
	}
}

// retryBackoff is the wait after the nth consecutive failure: poll,
// doubling, at most limit.
func retryBackoff(poll, limit time.Duration, n int) time.Duration {
	d := poll
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// due says whether the head has moved far enough, or long enough ago,
// past the last checkpoint.
func (c *Checkpointer) due(ctx context.Context, now, since time.Time) (bool, error) {
	seq, _, err := c.st.AuditHead(ctx)
	if err != nil {
		return false, fmt.Errorf("audit: head: %w", err)
	}
	last, err := c.lastCheckpoint(ctx)
	if err != nil {
		return false, err
	}
	var lastSeq int64
	if last != nil {
		lastSeq, since = last.Seq, last.Time
	}
	n := seq - lastSeq
	return n >= c.cfg.Every || (n > 0 && now.Sub(since) >= c.cfg.Interval), nil
}
