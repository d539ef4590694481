package runtime

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/purgatory-go/purgatory/runtime/store"
)

// This file: the link to the store: registration, store operations and
// adopting the store's answers and announcements (the watch).

// storeTimeout bounds store calls made on behalf of finished calls and of
// timers: the store's own timeout applies too.
const storeTimeout = time.Second

// storeBackoff is how long a breaker stays off a store that failed.
const storeBackoff = time.Second

// storeCtx returns the context for a store call: the caller's for a call
// in progress (Allow's claim), otherwise one bounded by storeTimeout.
func (c *conf) storeCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if ctx != nil {
		return ctx, func() {}
	}
	if _, ok := c.f.store.(store.Immediate); ok {
		return context.Background(), func() {} // never blocks: save the timer
	}
	return context.WithTimeout(context.Background(), storeTimeout)
}

// register registers the circuit with the store and starts watching it.
// The factory calls it once, before anybody else sees b; its events are
// queued and delivered once b is ready.
func (b *Breaker) register(wanted store.Settings) {
	f := b.f
	set, snap, err := wanted, store.New(), error(nil)
	var perr error
	if o := f.outage.Load(); !f.private && !b.flags.has(flagDetached) && o != nil && f.clock.Now().Before(o.until) {
		err = o.skip(b.name) // the store failed lately: do not wait for it again
	} else if !f.private && !b.flags.has(flagDetached) {
		ctx, cancel := b.storeCtx(nil)
		set, snap, err = f.store.Register(ctx, b.name, wanted)
		if p, ok := f.store.(interface{ Ping(context.Context) error }); ok && err == nil && f.pinged.CompareAndSwap(false, true) {
			perr = p.Ping(ctx) // the first registration checks what the store may do
		}
		cancel()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err != nil {
		b.storeFailedLocked(err)
		snap = store.New()
		if !f.private && !b.flags.has(flagDetached) {
			// Until it reaches the store, this process may not hear of the
			// record at all (a record that does not change sends nothing):
			// register again after the back-off, calls or not.
			b.edit().unreg = true
			b.armRetryLocked()
		}
	} else if set != wanted && validSettings(set) {
		p := *b.policy // shared with other circuits: this one gets its own
		p.set, p.cfg = set, configOf(set, p.cfg)
		b.policy = &p
	}
	if err == nil {
		b.storeSeq.Store(snap.Seq)
	}
	if perr != nil {
		b.storeErrs.Add(1)
		b.events.post(Event{Kind: EventStoreError, Circuit: b.name, Err: perr})
	}
	if b.set.FailureRate > 0 {
		b.rate = &rater{b: b}
	}
	b.events.post(Event{Kind: EventCreated, Circuit: b.name, Config: b.cfg})
	if b.set != wanted {
		b.events.post(conflictEvent(b.name, b.cfg, configOf(wanted, b.cfg)))
	}
	b.setLocked(snap, f.clock.Now())
}

// registerAgain registers a circuit whose registration failed and adopts
// the store's record, unless this process's own transitions wait to be
// pushed (reconcile meets the record then). Its settings stay those in
// force since it was made (the hot path reads them without a lock): a
// record with others is reported as a conflict. It reports whether the
// store answered.
func (b *Breaker) registerAgain() bool {
	ctx, cancel := b.storeCtx(nil)
	set, snap, err := b.f.store.Register(ctx, b.name, b.set)
	cancel()
	if err != nil {
		b.storeFailed(err)
		return false
	}
	b.flags.clear(flagDegraded)
	b.mu.Lock()
	r := b.edit()
	r.unreg = false
	diverged := r.diverged
	if set != b.set {
		b.events.post(conflictEvent(b.name, configOf(set, b.cfg), b.cfg))
	}
	b.mu.Unlock()
	b.drain()
	if !diverged {
		b.adoptReply(snap, 0)
	}
	return true
}

// validSettings reports whether settings a store returned are sane.
func validSettings(s store.Settings) bool {
	return s.TTL > 0 && s.Trials >= 1 && s.Threshold >= 0 && (s.Threshold > 0 || s.FailureRate > 0) &&
		s.FailureRate >= 0 && s.FailureRate <= 1 && s.MinCalls >= 0 && s.Window >= 0 && s.MaxTTL >= 0
}

// watched takes a snapshot the store announced.
func (b *Breaker) watched(s store.Snapshot) { b.adopt(s) }

// adopt makes s, which the store vouched for, the circuit's snapshot if it
// is newer than what the store said before (by Seq, or by generation for a
// record that went back in time), and tells the listeners.
func (b *Breaker) adopt(s store.Snapshot) {
	if s.Seq <= b.storeSeq.Load() && s.Gen <= b.view.Load()>>genShift {
		return // our own change coming back, or an old one: no lock
	}
	var now time.Time
	if s.State != Closed || s.Gen != b.view.Load()>>genShift {
		now = b.f.clock.Now() // a closed count changing needs no clock
	}
	b.mu.Lock()
	installed := b.adoptLocked(s, now)
	b.mu.Unlock()
	if installed {
		b.drain()
	}
}

// adoptLocked is adopt's work under b.mu, now the time if it was read
// already (else zero). It reports whether it installed s.
func (b *Breaker) adoptLocked(s store.Snapshot, now time.Time) bool {
	if r := b.peek(); s.Seq <= b.storeSeq.Load() && s.Gen <= b.snap.Gen || r.diverged && s.Gen <= r.baseGen {
		// Old; or, while this process's own transitions wait to be pushed,
		// the generation it left, moved on only by counters (a write it
		// gave up on, applied late): that must not revert them.
		return false
	}
	if now.IsZero() && (s.Gen != b.snap.Gen || s.State != b.snap.State) {
		now = b.f.clock.Now()
	}
	seq := max(s.Seq, b.storeSeq.Load())
	if s.Gen > b.snap.Gen {
		// A newer generation with a lower Seq: the record was replaced
		// (restored, repaired). Order from its Seq on, or every later
		// change of this generation would look old.
		seq = s.Seq
	}
	b.installLocked(s, seq, now)
	return true
}

// installLocked makes s, which the store vouched for, the circuit's
// snapshot, with seq the newest Seq the store vouched for. If this process
// had diverged, the record moved on meanwhile: it wins. b.mu is held.
func (b *Breaker) installLocked(s store.Snapshot, seq uint64, now time.Time) {
	b.installs.Add(1)
	b.storeSeq.Store(seq)
	if r := b.rare; r != nil && r.diverged {
		r.leases.dropLocal()
		r.diverged = false
	}
	b.setLocked(s.Clamp(b.set, now), now)
}

// adoptReply adopts the store's answer to an operation on generation
// asked. An answer is the record at the time of the operation, so one of
// an older generation than asked about means the store lost writes (a
// restore, a failover to a replica that missed them): the store is the
// truth, and it is adopted whatever its Seq.
func (b *Breaker) adoptReply(s store.Snapshot, asked uint64) {
	if s.Gen >= asked || asked == 0 {
		b.adopt(s)
		return
	}
	now := b.f.clock.Now()
	b.mu.Lock()
	b.installLocked(s, s.Seq, now)
	b.mu.Unlock()
	b.drain()
}

// stepBack takes the store's answer s to an operation on generation asked
// whose Seq is lower than the newest this process had seen when it sent
// it. An answer is the record after the operation, which ran after every
// change this process had seen: so the record stepped back — a forged
// message got through as a counter change (see the Redis store's threat
// model), or the store lost writes. The answer is the truth and is
// installed as it is, its Seq included, so that a forged message lasts
// until the next store call at most (the next reset, claim, or the end of
// the open period or lease); unless something else was installed since
// the operation was sent, which is then ordered with it as usual.
func (b *Breaker) stepBack(s store.Snapshot, asked uint64, installs uint64) {
	now := b.f.clock.Now()
	b.mu.Lock()
	installed := true
	switch {
	case b.installs.Load() == installs && !b.peek().diverged:
		b.installLocked(s, s.Seq, now)
	case s.Gen >= asked || asked == 0: // as adoptReply, without letting go of mu
		installed = b.adoptLocked(s, now)
	default:
		b.installLocked(s, s.Seq, now)
	}
	b.mu.Unlock()
	if installed {
		b.drain()
	}
}

// update applies the operation c of generation gen through the store and
// adopts the store's answer. When the store fails (or failed less than
// storeBackoff ago), or the factory is closed, it applies c to the local
// snapshot instead so that the breaker keeps working, and remembers that
// the local state diverged. A claim reports whether it got a slot. The
// snapshot after c (the store's answer, or the local one) is stored in
// *out unless out is nil.
func (b *Breaker) update(ctx context.Context, gen uint64, c *store.Change, out *store.Snapshot) (granted bool) {
	granted, _ = b.updateFrom(ctx, gen, c, out)
	return granted
}

// updateFrom is update that also reports whether c was applied to the
// local snapshot rather than by the store (a claim granted so holds no
// slot in the store).
func (b *Breaker) updateFrom(ctx context.Context, gen uint64, c *store.Change, out *store.Snapshot) (granted, local bool) {
	f := b.f
	if f.private || b.flags.has(flagDetached) {
		// applyLocal reads the clock if c needs it.
		return b.applyLocal(gen, time.Time{}, c, out), true
	}
	o := store.Op{Circuit: b.name, Settings: b.set, Gen: gen}
	degraded := b.flags.has(flagDegraded)
	if c.Kind.Timed() || degraded {
		o.Now = f.clock.Now()
	}
	useStore := true
	if degraded {
		b.mu.Lock()
		r := b.peek()
		useStore = !o.Now.Before(r.retryAt)
		diverged, want, base, baseGen := r.diverged, b.snap, r.base, r.baseGen
		b.mu.Unlock()
		if useStore && diverged {
			useStore = b.reconcile(o, want, base, baseGen)
		}
	}
	if useStore {
		sctx, cancel := b.storeCtx(ctx)
		seen, installs := b.storeSeq.Load(), b.installs.Load() // see stepBack
		var err error
		sc := *c
		if sc.Kind == store.Claim || sc.Kind == store.Expire {
			sc.Skew = f.skew // a lease's Until is the claimer's clock (see WithClockSkew)
		}
		var snap store.Snapshot
		snap, granted, err = store.Do(sctx, f.store, o, sc)
		cancel()
		var applied store.Applied
		applied, err = b.appliedAnyway(err) // the snapshot is valid all the same
		if err == nil {
			if applied == nil && b.flags.has(flagApplied) {
				b.flags.clear(flagApplied)
			}
			b.flags.clear(flagDegraded)
			if f.outage.Load() != nil {
				f.outage.Store(nil)
			}
			if snap.Seq < seen {
				b.stepBack(snap, gen, installs)
			} else {
				b.adoptReply(snap, gen)
			}
			if out != nil {
				*out = snap
			}
			return granted, false
		}
		if ctx != nil && ctx.Err() != nil {
			// The caller gave up (its claim): the store is not to blame.
			b.mu.Lock()
			defer b.mu.Unlock()
			if out != nil {
				*out = b.snap
			}
			return false, false
		}
		b.storeFailed(err)
		if o.Now.IsZero() {
			o.Now = f.clock.Now()
		}
	}
	return b.applyLocal(gen, o.Now, c, out), true
}

// appliedAnyway takes a store call's error. One the store returned beside
// an answer it applied all the same (a record with other settings, a
// corrupt record replaced) is an answer, not a store failure: it is
// reported, and appliedAnyway returns it and a nil error. Any other error
// is returned as it is.
func (b *Breaker) appliedAnyway(err error) (store.Applied, error) {
	var applied store.Applied
	if err != nil && errors.As(err, &applied) && applied.Applied() {
		b.reportApplied(applied)
		return applied, nil
	}
	return nil, err
}

// reportApplied tells listeners what a store said beside an answer it
// applied: a record whose settings differ from ours (a config conflict),
// or a corrupt record it replaced (a store error). Each is reported once
// until it stops.
func (b *Breaker) reportApplied(err store.Applied) {
	b.mu.Lock()
	if !b.flags.set(flagApplied) {
		var conflict store.Conflict
		if errors.As(err, &conflict) {
			inForce, wanted := conflict.Settings()
			b.events.post(Event{Kind: EventConfigConflict, Circuit: b.name, Config: configOf(inForce, b.cfg),
				Err: fmt.Errorf("purgatory: circuit %q: the store's record is in force (%s); ignoring %s: %w",
					b.name, describe(configOf(inForce, b.cfg)), describe(configOf(wanted, b.cfg)), err)})
		} else {
			b.storeErrs.Add(1)
			b.events.post(Event{Kind: EventStoreError, Circuit: b.name, Err: err})
		}
	}
	b.mu.Unlock()
	b.drain()
}

// detach stops the circuit's watch and reconciliation: from now on it works
// on its local state only (see armLocked for its timers). The factory
// calls it on Remove and Close.
func (b *Breaker) detach() {
	b.mu.Lock()
	b.flags.set(flagDetached)
	if r := b.rare; r != nil && r.retry != nil {
		r.retry()
		r.retry = nil
	}
	watch := b.watch
	b.watch = nil
	b.mu.Unlock()
	if watch != nil {
		watch()
	}
}
