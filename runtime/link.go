package runtime

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/purgatory-go/purgatory/runtime/store"
)

// This file: the link to the store: registration and store operations;
// adopting the store's answers is in answers.go, degraded mode in
// degraded.go, the pusher in push.go.

// storeLink is a circuit's link to its factory's store: what the breaker
// knows of the record besides the replica, and everything that talks to
// the store — registration, operations and their answers, the watch,
// degraded mode and reconciliation (degraded.go), and the pusher
// (push.go). A breaker of a factory with a store has one, made with it; a
// breaker without a store has none, and keeps the circuit's state itself.
//
// Its atomics are read on the way to the store without a lock (each is
// also written under the breaker's mu where it must agree with the
// replica); watch is guarded by the breaker's mu; the push queue, made by
// the first result pushed, has its own lock. The state of degraded mode
// (diverged, base, retry timer) is the replica's: see rare.
type storeLink struct {
	b        *Breaker                  // its breaker: immutable
	storeSeq atomic.Uint64             // the newest Seq the store vouched for
	installs atomic.Uint64             // counts installLocked calls (see stepBack)
	pushq    atomic.Pointer[pushQueue] // results on their way to the store (see push.go)
	watch    func()                    // stops the store watch; guarded by b.mu
	batches  bool                      // the store is a store.FailureBatcher: immutable
}

// storeTimeout bounds store calls made on behalf of finished calls and of
// timers: the store's own timeout applies too.
const storeTimeout = time.Second

// storeBackoff is how long a breaker stays off a store that failed.
const storeBackoff = time.Second

// storeCtx returns the context for a store call: the caller's for a call
// in progress (Allow's claim), otherwise one bounded by storeTimeout.
func (l *storeLink) storeCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if ctx != nil {
		return ctx, func() {}
	}
	if _, ok := l.b.f.store.(store.Immediate); ok {
		return context.Background(), func() {} // never blocks: save the timer
	}
	return context.WithTimeout(context.Background(), storeTimeout)
}

// register registers the circuit with the store and starts watching it.
// The factory calls it once, before anybody else sees b; its events are
// queued and delivered once b is ready.
func (rep *replica) register(wanted store.Settings) {
	b := rep.b
	f, l := b.f, b.link
	set, snap, err := wanted, store.New(), error(nil)
	var perr error
	if b.storeless() {
		l = nil // local state only
	} else if o := f.outage.Load(); o != nil && f.clock.Now().Before(o.until) {
		err = o.skip(b.name) // the store failed lately: do not wait for it again
	} else {
		ctx, cancel := l.storeCtx(nil)
		set, snap, err = f.store.Register(ctx, b.name, wanted)
		if p, ok := f.store.(interface{ Ping(context.Context) error }); ok && err == nil && f.pinged.CompareAndSwap(false, true) {
			perr = p.Ping(ctx) // the first registration checks what the store may do
		}
		cancel()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err != nil {
		l.storeFailedLocked(err)
		snap = store.New()
		// Until it reaches the store, this process may not hear of the
		// record at all (a record that does not change sends nothing):
		// register again after the back-off, calls or not.
		b.edit().unreg = true
		l.armRetryLocked()
	} else if set != wanted && validSettings(set) {
		p := *b.policy // shared with other circuits: this one gets its own
		p.set, p.cfg = set, configOf(set, p.cfg)
		b.policy = &p
	}
	if err == nil && l != nil {
		l.storeSeq.Store(snap.Seq)
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
func (l *storeLink) registerAgain() bool {
	b := l.b
	ctx, cancel := l.storeCtx(nil)
	set, snap, err := b.f.store.Register(ctx, b.name, b.set)
	cancel()
	if err != nil {
		l.storeFailed(err)
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
		l.adoptReply(snap, 0)
	}
	return true
}

// validSettings reports whether settings a store returned are sane.
func validSettings(s store.Settings) bool {
	return s.TTL > 0 && s.Trials >= 1 && s.Threshold >= 0 && (s.Threshold > 0 || s.FailureRate > 0) &&
		s.FailureRate >= 0 && s.FailureRate <= 1 && s.MinCalls >= 0 && s.Window >= 0 && s.MaxTTL >= 0
}

// update applies the operation c of generation gen through the store and
// adopts the store's answer. When the store fails (or failed less than
// storeBackoff ago), or the factory is closed, it applies c to the local
// snapshot instead so that the breaker keeps working, and remembers that
// the local state diverged. A claim reports whether it got a slot, and
// local whether c was applied to the local snapshot rather than by the
// store (a claim granted so holds no slot in the store). The snapshot
// after c (the store's answer, or the local one) is stored in *out unless
// out is nil.
func (rep *replica) update(ctx context.Context, gen uint64, c *store.Change, out *store.Snapshot) (granted, local bool) {
	b := rep.b
	if b.storeless() {
		// applyLocal reads the clock if c needs it.
		return b.applyLocal(gen, time.Time{}, c, out), true
	}
	return b.link.update(ctx, gen, c, out)
}

// update is Breaker.update with the store.
func (l *storeLink) update(ctx context.Context, gen uint64, c *store.Change, out *store.Snapshot) (granted, local bool) {
	b, f := l.b, l.b.f
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
			useStore = l.reconcile(o, want, base, baseGen)
		}
	}
	if useStore {
		sctx, cancel := l.storeCtx(ctx)
		seen, installs := l.storeSeq.Load(), l.installs.Load() // see stepBack
		var err error
		sc := *c
		if sc.Kind == store.Claim || sc.Kind == store.Expire {
			sc.Skew = f.skew // a lease's Until is the claimer's clock (see WithClockSkew)
		}
		var snap store.Snapshot
		snap, granted, err = store.Do(sctx, f.store, o, sc)
		cancel()
		var applied store.Applied
		applied, err = l.appliedAnyway(err) // the snapshot is valid all the same
		if err == nil {
			if applied == nil && b.flags.has(flagApplied) {
				b.flags.clear(flagApplied)
			}
			b.flags.clear(flagDegraded)
			if f.outage.Load() != nil {
				f.outage.Store(nil)
			}
			if snap.Seq < seen {
				l.stepBack(snap, gen, installs)
			} else {
				l.adoptReply(snap, gen)
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
		l.storeFailed(err)
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
func (l *storeLink) appliedAnyway(err error) (store.Applied, error) {
	var applied store.Applied
	if err != nil && errors.As(err, &applied) && applied.Applied() {
		l.reportApplied(applied)
		return applied, nil
	}
	return nil, err
}

// reportApplied tells listeners what a store said beside an answer it
// applied: a record whose settings differ from ours (a config conflict),
// or a corrupt record it replaced (a store error). Each is reported once
// until it stops.
func (l *storeLink) reportApplied(err store.Applied) {
	b := l.b
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
func (rep *replica) detach() {
	b := rep.b
	b.mu.Lock()
	b.flags.set(flagDetached)
	if r := b.rare; r != nil && r.retry != nil {
		r.retry()
		r.retry = nil
	}
	var watch func()
	if l := b.link; l != nil {
		watch, l.watch = l.watch, nil
	}
	b.mu.Unlock()
	if watch != nil {
		watch()
	}
}
