package runtime

import (
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
	f := b.f
	d = min(d, max(b.set.TTL, b.set.MaxTTL))
	if b.storeless() {
		now := f.clock.Now()
		b.mu.Lock()
		next := b.snap.Force(b.set, Open, now)
		next.Until = now.Add(d)
		b.setLocked(next, now)
		b.mu.Unlock()
		b.drain()
		return
	}
	gen := word(b.view.Load()).gen() // the snapshot's: setLocked writes both under mu
	var snap store.Snapshot
	b.update(nil, gen, &store.Change{Kind: store.Force, To: Open}, &snap)
	now := f.clock.Now()
	if b.flags.has(flagDegraded | flagDetached) {
		// Applied locally: this process's open period is d; a
		// reconciliation pushes it to the store with the rest.
		b.mu.Lock()
		if s := b.snap; s.Gen == snap.Gen && s.State == Open {
			s.Until = now.Add(d)
			b.setLocked(s, now)
			b.openErr.Store(&OpenError{Circuit: b.name, RetryAfter: roundUp(d)})
		}
		b.mu.Unlock()
		b.drain()
		return
	}
	if snap.State != Open {
		return
	}
	want := snap
	want.Until = now.Add(d)
	o := store.Op{Circuit: b.name, Settings: b.set, Gen: snap.Gen, Now: now}
	ctx, cancel := b.link.storeCtx(nil)
	got, err := f.store.Reconcile(ctx, o, snap.Seq, want)
	cancel()
	_, err = b.link.appliedAnyway(err)
	if err != nil {
		b.link.storeFailed(err) // open for its TTL all the same
		return
	}
	b.link.adopt(got)
}
