package runtime

import (
	"errors"
	"time"

	"github.com/purgatory-go/purgatory/runtime/store"
)

// OpenFor opens the circuit now for d instead of its TTL, for a server
// that said when to come back (an HTTP Retry-After, say). d is capped at
// the circuit's longest open period, max(TTL, MaxTTL): the cap every
// process sharing the circuit enforces on the records it reads, so that a
// bad hint cannot hold a circuit open for a day. d <= 0 opens it for its
// TTL, as [Breaker.Open] does. After d, the circuit lets trials through as
// after any open period, at its current backoff level.
//
// On a factory without a store it takes the breaker's lock once. With a
// shared store it makes two store calls, a Force and a compare-and-set of
// the open period's end ([store.Store.Reconcile]): if another process
// changed the circuit in between, that change wins; if the store fails,
// the circuit is open for d in this process, which pushes its state once
// the store is back, as after any outage.
func (b *Breaker) OpenFor(d time.Duration) {
	if d <= 0 {
		b.Open()
		return
	}
	c := b
	f := c.f
	d = min(d, max(c.set.TTL, c.set.MaxTTL))
	if f.private || c.detached.Load() {
		now := f.clock.Now()
		c.mu.Lock()
		next := c.snap.Force(c.set, Open, now)
		next.Until = now.Add(d)
		c.setLocked(next, now)
		c.mu.Unlock()
		c.drain()
		return
	}
	c.mu.Lock()
	gen := c.snap.Gen
	c.mu.Unlock()
	snap, _ := c.update(nil, gen, opForceOpen)
	now := f.clock.Now()
	if c.degraded.Load() || c.detached.Load() {
		// Applied locally: this process's open period is d; a
		// reconciliation pushes it to the store with the rest.
		c.mu.Lock()
		if s := c.snap; s.Gen == snap.Gen && s.State == Open {
			s.Until = now.Add(d)
			c.setLocked(s, now)
			c.openErr.Store(&OpenError{Circuit: c.name, RetryAfter: roundUp(d)})
		}
		c.mu.Unlock()
		c.drain()
		return
	}
	if snap.State != Open {
		return
	}
	want := snap
	want.Until = now.Add(d)
	o := store.Op{Circuit: c.name, Settings: c.set, Gen: snap.Gen, Now: now}
	ctx, cancel := c.storeCtx(nil)
	got, err := f.store.Reconcile(ctx, o, snap.Seq, want)
	cancel()
	var applied store.Applied
	if err != nil && errors.As(err, &applied) && applied.Applied() {
		c.reportApplied(applied)
		err = nil
	}
	if err != nil {
		c.storeFailed(err) // open for its TTL all the same
		return
	}
	c.adopt(got)
}
