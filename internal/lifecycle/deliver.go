package lifecycle

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/certwright/certwright/internal/recovery"
)

// deliveryBatch bounds the deliveries one run attempts.
const deliveryBatch = 100

// DeliveryBackoff is the wait after the n-th failed attempt (n >= 1):
// 30s doubling up to an hour, plus up to 10% jitter from r.
func DeliveryBackoff(n int, r io.Reader) time.Duration {
	return backoff(30*time.Second, time.Hour, n, r)
}

func backoff(base, max time.Duration, n int, r io.Reader) time.Duration {
	d := base
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	var b [8]byte
	if _, err := io.ReadFull(r, b[:]); err == nil {
		d += time.Duration(binary.BigEndian.Uint64(b[:]) % uint64(d/10+1))
	}
	return d
}

// DeliverResult counts what one delivery run did.
type DeliverResult struct {
	Sent, Retrying, Failed int
}

// deliveryClaim is how many deliveries one claim takes. A claim lasts
// their attempts' timeouts and a minute, which is the longest a replica
// that dies in the middle of a run holds them up.
const deliveryClaim = 5

// Deliver attempts every due delivery once: success marks it sent, a
// permanent error or the last allowed attempt marks it failed, anything
// else schedules a retry with backoff. Each delivery is claimed first,
// so that with several replicas only one sends it.
func (s *Service) Deliver(ctx context.Context) (DeliverResult, error) {
	var res DeliverResult
	var errs []error
	claimFor := deliveryClaim*s.cfg.DeliveryTimeout + time.Minute
	for done := 0; done < deliveryBatch && ctx.Err() == nil; {
		due, err := s.store.ClaimDeliveries(ctx, s.cfg.Clock.Now().UTC(), s.claimer, claimFor, min(deliveryClaim, deliveryBatch-done))
		if err != nil {
			return res, errors.Join(append(errs, fmt.Errorf("lifecycle: deliveries: %w", err))...)
		}
		if len(due) == 0 {
			break
		}
		for i, d := range due {
			if ctx.Err() != nil {
				// Claimed but not attempted: free for another replica now.
				if err := s.store.ReleaseDeliveries(context.WithoutCancel(ctx), s.claimer); err != nil {
					errs = append(errs, err)
				}
				s.cfg.Log.Debug("delivery run stopped; unattempted deliveries released", "left", len(due)-i)
				break
			}
			done++
			s.attempt(ctx, d)
			switch d.Status {
			case DeliverySent:
				res.Sent++
			case DeliveryFailed:
				res.Failed++
			default:
				res.Retrying++
			}
			if err := s.store.UpdateDelivery(ctx, d); errors.Is(err, ErrElsewhere) {
				s.cfg.Log.Warn("alert delivery attempted after its claim lapsed; another replica's outcome stands",
					"alert", d.AlertID, "channel", d.Channel, "status", d.Status)
			} else if err != nil {
				errs = append(errs, err)
			}
		}
	}
	return res, errors.Join(errs...)
}

func (s *Service) attempt(ctx context.Context, d *Delivery) {
	d.Attempts++
	ch, ok := s.settings().Channels[d.Channel]
	if !ok {
		d.Status, d.LastError = DeliveryFailed, "channel "+d.Channel+" is no longer configured"
		s.cfg.Log.Error("alert not delivered", "alert", d.AlertID, "channel", d.Channel, "err", d.LastError)
		return
	}
	actx, cancel := context.WithTimeout(ctx, s.cfg.DeliveryTimeout)
	// A channel that panics fails this attempt like any error.
	err := recovery.CallLogged(s.cfg.Log, "alert delivery to "+d.Channel, func() error { return ch.Send(actx, *d.Alert) })
	cancel()
	if s.cfg.Observer != nil {
		s.cfg.Observer.ObserveDelivery(d.Channel, err)
	}
	now := s.cfg.Clock.Now().UTC()
	if err == nil {
		d.Status, d.SentAt, d.LastError = DeliverySent, now, ""
		s.cfg.Log.Info("alert delivered", "alert", d.AlertID, "kind", d.Alert.Kind, "subject", d.Alert.Subject, "channel", d.Channel, "attempt", d.Attempts)
		return
	}
	d.LastError = err.Error()
	if s.cfg.Permanent(err) || d.Attempts >= s.settings().DeliveryAttempts {
		d.Status = DeliveryFailed
		s.cfg.Log.Error("alert delivery failed; giving up", "alert", d.AlertID, "channel", d.Channel, "attempts", d.Attempts, "err", err)
		return
	}
	d.NextAttemptAt = now.Add(DeliveryBackoff(d.Attempts, s.cfg.Rand))
	s.cfg.Log.Warn("alert delivery failed; will retry", "alert", d.AlertID, "channel", d.Channel, "attempt", d.Attempts, "retry_at", d.NextAttemptAt, "err", err)
}
