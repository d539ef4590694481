package runtime

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/purgatory-go/purgatory/runtime/store"
)

// Breaker guards calls to one circuit. Get one from [Factory.Breaker]; it is
// safe for concurrent use. A factory has one Breaker per circuit name.
type Breaker struct {
	view atomic.Uint64 // the hot path reads only this (see the view word)

	name  string
	group string // the Group's name, "" for a circuit made with Factory.Breaker
	f     *Factory
	cfg   Config         // in force: the first registration's (without excludes)
	set   store.Settings // cfg as the store keeps it

	openErr  atomic.Pointer[OpenError] // returned while open
	trialErr atomic.Pointer[OpenError] // returned while half-open with every slot taken
	isoErr   *OpenError                // returned while isolated
	stripes  stripes                   // per-call counts (counting)
	tally    atomic.Pointer[tally]     // a rate circuit's unmerged calls of its closed generation
	merged   atomic.Int64              // the window bucket of this process's last merge
	exclude  []func(error) bool        // the factory's, then the first registration's
	ignore   []func(error) bool        // the first registration's
	epoch    time.Time                 // origin of timed tokens' microseconds

	failures, excludedN, ignoredN, storeErrs atomic.Uint64
	flushing                                 atomic.Bool // a rate flush is under way or armed
	appliedErr                               atomic.Bool // an Applied error was reported (see reportApplied)
	detached                                 atomic.Bool // the factory dropped the circuit or was closed: local state only

	storeSeq atomic.Uint64 // the newest Seq the store vouched for
	installs atomic.Uint64 // counts installLocked calls (see stepBack)
	degraded atomic.Bool   // the last store call failed

	mu       sync.Mutex
	snap     store.Snapshot // the circuit as this process sees it
	window   *store.Window  // the local rolling window, used while degraded; made on first use
	retryAt  time.Time      // while degraded, store calls wait until then
	diverged bool           // snap moved on by itself while degraded
	base     uint64         // the store's Seq when snap diverged
	baseGen  uint64         // the generation snap diverged from (see reconcile)
	slots    uint32         // trial slots held by this process's calls (bits)
	held     int            // how many
	timer    func() bool    // stops the open/lease timer
	retry    func() bool    // stops the reconciliation retry timer
	openedAt time.Time
	stale    bool         // open: openErr's RetryAfter wants refreshing (see refreshOpenErr)
	trans    *Transitions // state changes so far; made by the first one

	events eventQueue
	watch  func()    // stops the store watch
	pushq  pushQueue // results on their way to the store (see push.go)

	ready    chan struct{} // closed once registered
	isReady  atomic.Bool   // ready is closed: lookups need not wait on it
	regFirst regKey        // the scalar fields of the first registration's Config
}

// regKey is the comparable part of a Config.
type regKey struct {
	threshold, trials, minCalls int
	ttl, window, slow, maxTTL   time.Duration
	rate                        float64
}

func keyOf(c Config) regKey {
	return regKey{c.Threshold, c.Trials, c.MinCalls, c.TTL, c.Window, c.SlowCall, c.MaxTTL, c.FailureRate}
}

// wait returns once c is registered.
func (c *Breaker) wait() {
	if !c.isReady.Load() {
		<-c.ready
	}
}

// micros reads the factory clock in microseconds since the circuit's
// epoch, modulo 2^40 (slow calls).
func (c *Breaker) micros() uint64 {
	return uint64(c.f.clock.Now().Sub(c.epoch)/time.Microsecond) & timedMask
}

// word returns the view word of snapshot s. c.mu is held.
func (c *Breaker) word(s store.Snapshot) uint64 {
	w := uint64(s.State) | (s.Gen&genMask)<<genShift
	if c.f.counting.Load() && c.stripes != nil {
		w |= countBit
	}
	switch s.State {
	case Open:
		if c.stale {
			w |= staleBit
		}
	case Closed:
		if s.Failures > 0 {
			w |= pendingBit
		}
		if c.set.FailureRate > 0 {
			w |= rateBit
		}
		if c.cfg.SlowCall > 0 {
			w |= slowBit
		}
	case HalfOpen:
		if c.held >= c.set.Trials || s.Claimed >= c.set.Trials {
			w |= fullBit
		}
	}
	return w
}

// register registers the circuit with the store and starts watching it.
// The factory calls it once, before anybody else sees c; its events are
// queued and delivered once c is ready.
func (c *Breaker) register(wanted store.Settings) {
	f := c.f
	c.openErr.Store(&OpenError{Circuit: c.name, RetryAfter: c.cfg.TTL})
	c.trialErr.Store(&OpenError{Circuit: c.name, state: HalfOpen})
	c.isoErr = &OpenError{Circuit: c.name, state: Isolated}
	set, snap, err := wanted, store.New(), error(nil)
	var perr error
	if o := f.outage.Load(); !f.private && !c.detached.Load() && o != nil && f.clock.Now().Before(o.until) {
		err = o.skip(c.name) // the store failed lately: do not wait for it again
	} else if !f.private && !c.detached.Load() {
		ctx, cancel := c.storeCtx(nil)
		set, snap, err = f.store.Register(ctx, c.name, wanted)
		if p, ok := f.store.(interface{ Ping(context.Context) error }); ok && err == nil && f.pinged.CompareAndSwap(false, true) {
			perr = p.Ping(ctx) // the first registration checks what the store may do
		}
		cancel()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.storeFailedLocked(err)
		snap = store.New()
	} else if set != wanted {
		if validSettings(set) {
			c.set = set
			c.cfg = configOf(set, c.cfg)
		}
	}
	if err == nil {
		c.storeSeq.Store(snap.Seq)
	}
	if perr != nil {
		c.storeErrs.Add(1)
		c.events.post(Event{Kind: EventStoreError, Circuit: c.name, Err: perr})
	}
	c.events.post(Event{Kind: EventCreated, Circuit: c.name, Config: c.cfg})
	if c.set != wanted {
		c.events.post(conflictEvent(c.name, c.cfg, configOf(wanted, c.cfg)))
	}
	c.setLocked(snap, f.clock.Now())
}

// validSettings reports whether settings a store returned are sane.
func validSettings(s store.Settings) bool {
	return s.TTL > 0 && s.Trials >= 1 && s.Threshold >= 0 && (s.Threshold > 0 || s.FailureRate > 0) &&
		s.FailureRate >= 0 && s.FailureRate <= 1 && s.MinCalls >= 0 && s.Window >= 0 && s.MaxTTL >= 0
}

// storeCtx returns the context for a store call: the caller's for a call
// in progress (Allow's claim), otherwise one bounded by storeTimeout.
func (c *Breaker) storeCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if ctx != nil {
		return ctx, func() {}
	}
	if _, ok := c.f.store.(store.Immediate); ok {
		return context.Background(), func() {} // never blocks: save the timer
	}
	return context.WithTimeout(context.Background(), storeTimeout)
}

// watched takes a snapshot the store announced.
func (c *Breaker) watched(s store.Snapshot) { c.adopt(s) }

// adopt makes s, which the store vouched for, the circuit's snapshot if it
// is newer than what the store said before (by Seq, or by generation for a
// record that went back in time), and tells the listeners.
func (c *Breaker) adopt(s store.Snapshot) {
	if s.Seq <= c.storeSeq.Load() && s.Gen <= c.view.Load()>>genShift {
		return // our own change coming back, or an old one: no lock
	}
	var now time.Time
	if s.State != Closed || s.Gen != c.view.Load()>>genShift {
		now = c.f.clock.Now() // a closed count changing needs no clock
	}
	c.mu.Lock()
	if s.Seq <= c.storeSeq.Load() && s.Gen <= c.snap.Gen || c.diverged && s.Gen <= c.baseGen {
		// Old; or, while this process's own transitions wait to be pushed,
		// the generation it left, moved on only by counters (a write it
		// gave up on, applied late): that must not revert them.
		c.mu.Unlock()
		return
	}
	if now.IsZero() && (s.Gen != c.snap.Gen || s.State != c.snap.State) {
		now = c.f.clock.Now()
	}
	seq := max(s.Seq, c.storeSeq.Load())
	if s.Gen > c.snap.Gen {
		// A newer generation with a lower Seq: the record was replaced
		// (restored, repaired). Order from its Seq on, or every later
		// change of this generation would look old.
		seq = s.Seq
	}
	c.installLocked(s, seq, now)
	c.mu.Unlock()
	c.drain()
}

// installLocked makes s, which the store vouched for, the circuit's
// snapshot, with seq the newest Seq the store vouched for. If this process
// had diverged, the record moved on meanwhile: it wins. c.mu is held.
func (c *Breaker) installLocked(s store.Snapshot, seq uint64, now time.Time) {
	c.installs.Add(1)
	c.storeSeq.Store(seq)
	c.diverged = false
	c.setLocked(s.Clamp(c.set, now), now)
}

// adoptReply adopts the store's answer to an operation on generation
// asked. An answer is the record at the time of the operation, so one of
// an older generation than asked about means the store lost writes (a
// restore, a failover to a replica that missed them): the store is the
// truth, and it is adopted whatever its Seq.
func (c *Breaker) adoptReply(s store.Snapshot, asked uint64) {
	if s.Gen >= asked || asked == 0 {
		c.adopt(s)
		return
	}
	now := c.f.clock.Now()
	c.mu.Lock()
	c.installLocked(s, s.Seq, now)
	c.mu.Unlock()
	c.drain()
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
func (c *Breaker) stepBack(s store.Snapshot, asked uint64, installs uint64) {
	now := c.f.clock.Now()
	c.mu.Lock()
	if c.installs.Load() != installs || c.diverged {
		c.mu.Unlock()
		c.adoptReply(s, asked)
		return
	}
	c.installLocked(s, s.Seq, now)
	c.mu.Unlock()
	c.drain()
}

// update runs one store operation for generation gen and adopts the
// store's answer. When the store fails (or failed less than storeBackoff
// ago), or the factory is closed, it applies the operation to the local
// snapshot instead so that the breaker keeps working, and remembers that
// the local state diverged. A claim reports whether it got a slot.
func (c *Breaker) update(ctx context.Context, gen uint64, op storeOp) (snap store.Snapshot, granted bool) {
	return c.updateWith(ctx, gen, op, 0, 0)
}

func (c *Breaker) updateWith(ctx context.Context, gen uint64, op storeOp, calls, failed int) (snap store.Snapshot, granted bool) {
	f := c.f
	if f.private || c.detached.Load() {
		var now time.Time
		if op.needsClock() {
			now = f.clock.Now()
		}
		return c.applyLocal(gen, now, op, calls, failed)
	}
	o := store.Op{Circuit: c.name, Settings: c.set, Gen: gen}
	degraded := c.degraded.Load()
	if op.needsClock() || degraded {
		o.Now = f.clock.Now()
	}
	useStore := true
	if degraded {
		c.mu.Lock()
		useStore = !o.Now.Before(c.retryAt)
		c.mu.Unlock()
		if useStore {
			useStore = c.reconcile(o)
		}
	}
	if useStore {
		sctx, cancel := c.storeCtx(ctx)
		seen, installs := c.storeSeq.Load(), c.installs.Load() // see stepBack
		var err error
		switch op {
		case opFailure:
			snap, err = c.storeFailures(sctx, o, calls) // calls: how many (see push)
		case opSuccess:
			snap, err = f.store.Success(sctx, o)
		case opClaim:
			snap, granted, err = f.store.Claim(sctx, o)
		case opRelease:
			snap, err = f.store.Release(sctx, o)
		case opExpire:
			snap, err = f.store.Expire(sctx, o)
		case opForceOpen:
			snap, err = f.store.Force(sctx, o, Open)
		case opForceClosed:
			snap, err = f.store.Force(sctx, o, Closed)
		case opForceIsolated:
			snap, err = f.store.Force(sctx, o, Isolated)
		case opRecord:
			snap, err = f.store.Record(sctx, o, calls, failed)
		}
		cancel()
		var applied store.Applied
		if err != nil && errors.As(err, &applied) && applied.Applied() {
			c.reportApplied(applied) // the snapshot is valid all the same
			err = nil
		}
		if err == nil {
			if applied == nil && c.appliedErr.Load() {
				c.appliedErr.Store(false)
			}
			c.degraded.Store(false)
			if f.outage.Load() != nil {
				f.outage.Store(nil)
			}
			if snap.Seq < seen {
				c.stepBack(snap, gen, installs)
			} else {
				c.adoptReply(snap, gen)
			}
			return snap, granted
		}
		if ctx != nil && ctx.Err() != nil {
			// The caller gave up (its claim): the store is not to blame.
			c.mu.Lock()
			defer c.mu.Unlock()
			return c.snap, false
		}
		c.storeFailed(err)
		if o.Now.IsZero() {
			o.Now = f.clock.Now()
		}
	}
	return c.applyLocal(gen, o.Now, op, calls, failed)
}

// applyLocal applies op to the local snapshot.
func (c *Breaker) applyLocal(gen uint64, now time.Time, op storeOp, calls, failed int) (snap store.Snapshot, granted bool) {
	o := struct {
		Gen uint64
		Now time.Time
	}{gen, now}
	c.mu.Lock()
	s := c.snap
	next, changed := s, false
	switch op {
	case opFailure:
		next, changed = s.FailureN(c.set, o.Gen, max(calls, 1), o.Now)
	case opSuccess:
		next, changed = s.Success(c.set, o.Gen)
	case opClaim:
		if c.held < c.set.Trials {
			next, granted = s.Claim(c.set, o.Gen, o.Now)
			changed = next.Seq != s.Seq
		}
	case opRelease:
		next, changed = s.Release(o.Gen)
	case opExpire:
		next, changed = s.Expire(c.set, o.Gen, o.Now)
	case opForceOpen:
		next, changed = s.Force(c.set, Open, o.Now), true
	case opForceClosed:
		next, changed = s.Force(c.set, Closed, o.Now), true
	case opForceIsolated:
		next, changed = s.Force(c.set, Isolated, o.Now), true
	case opRecord:
		if c.window == nil {
			c.window = new(store.Window)
		}
		next, *c.window, changed = s.Record(*c.window, c.set, o.Gen, calls, failed, o.Now)
	}
	if changed {
		if next.Gen != s.Gen && !c.diverged && !c.detached.Load() && !c.f.private {
			c.diverged, c.base, c.baseGen = true, c.storeSeq.Load(), s.Gen
			c.armRetryLocked()
		}
		c.setLocked(next, o.Now)
	}
	c.mu.Unlock()
	c.drain()
	return next, granted
}

// reconcile pushes a state the circuit reached while the store was away,
// before any other operation (see the package doc). It reports whether the
// store answered.
func (c *Breaker) reconcile(o store.Op) bool {
	c.mu.Lock()
	if !c.diverged {
		c.mu.Unlock()
		return true
	}
	want, base, baseGen := c.snap, c.base, c.baseGen
	c.mu.Unlock()
	sctx, cancel := c.storeCtx(nil)
	defer cancel()
	var got store.Snapshot
	var err error
	for range 4 {
		got, err = c.f.store.Reconcile(sctx, o, base, want)
		if err != nil || got.Seq == base || got.Gen != baseGen || got.Seq < base {
			break
		}
		// The record is still in the generation this process left, moved
		// on only by counters (writes it gave up on when the store did not
		// answer, applied late, or other processes' counts): nobody
		// changed its state, so the local transitions are pushed on top.
		base = got.Seq
	}
	if err != nil {
		c.storeFailed(err)
		return false
	}
	c.degraded.Store(false)
	c.mu.Lock()
	c.diverged = false
	if c.retry != nil {
		c.retry()
		c.retry = nil
	}
	c.mu.Unlock()
	if got.Seq != base {
		c.adopt(got) // pushed (a new generation of ours), or the record won
	}
	return true
}

// armRetryLocked makes sure a diverged circuit reconciles even if no call
// comes. c.mu is held.
func (c *Breaker) armRetryLocked() {
	if c.retry != nil || c.detached.Load() {
		return
	}
	c.retry = c.f.clock.AfterFunc(storeBackoff, c.retryTick)
}

func (c *Breaker) retryTick() {
	c.mu.Lock()
	c.retry = nil
	again := c.diverged && !c.detached.Load()
	c.mu.Unlock()
	if !again {
		return
	}
	o := store.Op{Circuit: c.name, Settings: c.set, Now: c.f.clock.Now()}
	if !c.reconcile(o) {
		c.mu.Lock()
		c.armRetryLocked()
		c.mu.Unlock()
	}
}

// reportApplied tells listeners what a store said beside an answer it
// applied: a record whose settings differ from ours (a config conflict),
// or a corrupt record it replaced (a store error). Each is reported once
// until it stops.
func (c *Breaker) reportApplied(err store.Applied) {
	c.mu.Lock()
	if !c.appliedErr.Swap(true) {
		var conflict store.Conflict
		if errors.As(err, &conflict) {
			inForce, wanted := conflict.Settings()
			c.events.post(Event{Kind: EventConfigConflict, Circuit: c.name, Config: configOf(inForce, c.cfg),
				Err: fmt.Errorf("purgatory: circuit %q: the store's record is in force (%s); ignoring %s: %w",
					c.name, describe(configOf(inForce, c.cfg)), describe(configOf(wanted, c.cfg)), err)})
		} else {
			c.storeErrs.Add(1)
			c.events.post(Event{Kind: EventStoreError, Circuit: c.name, Err: err})
		}
	}
	c.mu.Unlock()
	c.drain()
}

// storeFailed reports a store error once per episode and backs off.
func (c *Breaker) storeFailed(err error) {
	c.mu.Lock()
	c.storeFailedLocked(err)
	c.mu.Unlock()
	c.drain()
}

func (c *Breaker) storeFailedLocked(err error) {
	c.storeErrs.Add(1)
	first := !c.degraded.Load()
	c.degraded.Store(true)
	c.retryAt = c.f.clock.Now().Add(storeBackoff)
	c.f.outage.Store(&outage{until: c.retryAt, err: err})
	if first {
		c.events.post(Event{Kind: EventStoreError, Circuit: c.name, Err: err})
	}
}

// setLocked makes s the circuit's snapshot and view, arming the timer of an
// open period or a trial lease of a new generation, and queues the events
// of the change. The error a rejection returns is in place before the view
// says so. c.mu is held.
func (c *Breaker) setLocked(s store.Snapshot, now time.Time) {
	prev := c.snap
	c.snap = s
	changed := s.Gen != prev.Gen || s.State != prev.State
	if changed || !s.Until.Equal(prev.Until) || s.Claimed != prev.Claimed {
		if c.timer != nil {
			c.timer()
			c.timer = nil
		}
		if timed(s) {
			c.armLocked(s, now)
		}
		if s.State == HalfOpen {
			c.trialErr.Store(&OpenError{Circuit: c.name, RetryAfter: max(roundUp(s.Until.Sub(now)), time.Millisecond), state: HalfOpen})
		}
	}
	if s.State == Closed && c.set.FailureRate > 0 {
		if tl := c.tally.Load(); tl == nil || tl.gen != s.Gen {
			c.tally.Store(newTally(s.Gen)) // a closed generation counts afresh
		}
	} else if s.State != Closed && c.tally.Load() != nil {
		c.tally.Store(nil) // the closed generation ended: its counts no longer matter
	}
	if changed {
		c.slots, c.held = 0, 0
		switch s.State {
		case Open:
			if prev.State == Closed || c.openedAt.IsZero() {
				c.openedAt = now
			}
			c.openErr.Store(&OpenError{Circuit: c.name, RetryAfter: roundUp(s.Until.Sub(now))})
			c.stale = false
			c.f.stale(c)
		case Isolated:
			if prev.State == Closed {
				c.openedAt = now
			}
		}
		if prev.State != s.State && prev.Gen != 0 {
			c.events.post(Event{Kind: EventStateChanged, Circuit: c.name, From: prev.State, To: s.State})
			if c.trans == nil {
				c.trans = new(Transitions)
			}
			c.trans[prev.State][s.State]++
			if prev.State == HalfOpen && s.State == Closed && s.Succeeded > 0 { // closed by its trials, not by hand
				c.events.post(Event{Kind: EventRecovered, Circuit: c.name, From: HalfOpen, To: Closed})
			}
		}
	}
	c.view.Store(c.word(s))
}

// timed reports whether s ends by itself: an open period, or a trial lease
// with slots taken.
func timed(s store.Snapshot) bool {
	return s.State == Open || s.State == HalfOpen && s.Claimed > 0
}

// armLocked schedules the end of an open period or trial lease. A circuit
// the factory dropped keeps its timers: they end by themselves (an open
// period, then at most a lease), and a circuit must not stay open for
// ever because nobody watches it. c.mu is held.
func (c *Breaker) armLocked(s store.Snapshot, now time.Time) {
	d := max(s.Until.Sub(now), 0)
	gen := s.Gen
	c.timer = c.f.clock.AfterFunc(d, func() { c.tick(gen) })
}

// tick runs at the end of an open period or trial lease.
func (c *Breaker) tick(gen uint64) {
	c.mu.Lock()
	s := c.snap
	if s.Gen != gen || !timed(s) {
		c.mu.Unlock()
		return
	}
	c.timer = nil
	c.mu.Unlock()
	c.update(nil, gen, opExpire)
	// A store may keep the circuit as it is for longer (its clock is
	// behind ours, or it failed): look again later rather than never.
	c.mu.Lock()
	if c.snap.Gen == gen && c.timer == nil && timed(c.snap) {
		now := c.f.clock.Now()
		s := c.snap
		if !s.Until.After(now) {
			s.Until = now.Add(retryStep(c.cfg.TTL))
		}
		c.armLocked(s, now)
	}
	c.mu.Unlock()
}

// retryStep is how long a breaker waits before it asks its store again to
// end an open period or lease that the store kept.
func retryStep(ttl time.Duration) time.Duration {
	return min(max(ttl/10, time.Millisecond), time.Second)
}

func roundUp(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return (d + time.Millisecond - 1).Truncate(time.Millisecond)
}

// refreshOpenErr gives the open error a RetryAfter computed now. The
// factory's refresher marks it stale again a refreshEvery later (staleBit
// in the view), so a busy open circuit reads the clock and allocates once
// per refreshEvery and an idle one costs nothing.
func (c *Breaker) refreshOpenErr() *OpenError {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.openErr.Load()
	if !c.stale || c.snap.State != Open {
		return e
	}
	e = &OpenError{Circuit: c.name, RetryAfter: roundUp(c.snap.Until.Sub(c.f.clock.Now()))}
	c.openErr.Store(e)
	c.stale = false
	c.view.Store(c.word(c.snap))
	c.f.stale(c)
	return e
}

// markStale asks the next rejection to refresh RetryAfter.
func (c *Breaker) markStale() {
	c.mu.Lock()
	if c.snap.State == Open {
		c.stale = true
		c.view.Store(c.word(c.snap))
	}
	c.mu.Unlock()
}

// reject counts and reports a rejection.
func (c *Breaker) reject(w uint64, e *OpenError) error {
	if w&countBit != 0 {
		c.stripes.add(offRejected)
	}
	if c.f.listeners.active() {
		c.rejected(e)
	}
	return e
}

//go:noinline
func (c *Breaker) rejected(e *OpenError) { // out of line: keeps the rejection's frame small
	c.f.listeners.emit(Event{Kind: EventRejected, Circuit: c.name, Breaker: c, Seq: c.seq(), Err: e})
}

//go:noinline
func (c *Breaker) failed(err error) {
	c.mu.Lock()
	n := c.snap.Failures + 1
	c.mu.Unlock()
	seq := c.seq()
	c.f.listeners.emit(Event{Kind: EventFailure, Circuit: c.name, Breaker: c, Seq: seq, Failures: n, Err: err})
}

func (c *Breaker) seq() uint64 { return c.events.last.Load() }

// count counts a call's outcome.
func (c *Breaker) count(w uint64, o outcome) {
	switch o {
	case success:
		if w&countBit != 0 {
			c.stripes.add(offSuccess)
		}
	case failure:
		c.failures.Add(1)
	case excluded:
		c.excludedN.Add(1)
	case ignored:
		c.ignoredN.Add(1)
	}
}

// allowTrial claims a half-open trial slot.
func (c *Breaker) allowTrial(ctx context.Context) (Token, error) {
	for range 3 {
		w := c.view.Load()
		switch State(w & stateMask) {
		case Closed:
			if w&0xff == 0 {
				return Token(w), nil
			}
			return c.allowClosed(w), nil
		case Open:
			return 0, c.reject(w, c.openErr.Load())
		case Isolated:
			return 0, c.reject(w, c.isoErr)
		}
		if w&fullBit != 0 {
			return 0, c.reject(w, c.trialErr.Load())
		}
		if ctx != nil && ctx.Err() != nil {
			return 0, ctx.Err() // the caller hung up: take no slot, mark nothing
		}
		snap, granted := c.update(ctx, w>>genShift, opClaim)
		if granted {
			c.mu.Lock()
			if c.snap.Gen == snap.Gen && c.snap.State == HalfOpen && c.held < c.set.Trials {
				slot := c.takeSlotLocked()
				c.mu.Unlock()
				return c.token((snap.Gen&genMask)<<genShift|uint64(HalfOpen)|slot<<slotShift, c.cfg.SlowCall > 0), nil
			}
			c.mu.Unlock()
			// The slot came too late for this generation, or this process
			// holds every slot already (the store lost track of ours).
			c.update(nil, snap.Gen, opRelease)
			continue
		}
		if ctx != nil && ctx.Err() != nil {
			// The claim ended with the caller's context (the store may not
			// have answered): nothing is known about the slots.
			return 0, ctx.Err()
		}
		if snap.State == HalfOpen && snap.Gen == w>>genShift {
			c.mu.Lock()
			// Rejections are marked only while a timer (the lease's) will
			// look again: a view must never stay full with nothing to end it.
			if c.snap.Gen == snap.Gen && c.timer != nil {
				c.view.Store(c.word(c.snap) | fullBit)
			}
			c.mu.Unlock()
			return 0, c.reject(w, c.trialErr.Load())
		}
	}
	w := c.view.Load()
	return 0, c.reject(w, c.trialErr.Load())
}

// takeSlotLocked picks the number of a held trial slot for a token. c.mu
// is held. Beyond maxSlots trials, slots share the last number and a
// second report of one of them is not detected.
func (c *Breaker) takeSlotLocked() uint64 {
	c.held++
	defer c.view.Store(c.word(c.snap))
	for i := range maxSlots - 1 {
		if c.slots&(1<<i) == 0 {
			c.slots |= 1 << i
			return uint64(i)
		}
	}
	return maxSlots - 1
}

// allowClosed admits a call to a closed circuit whose view has a flag: its
// token is marked for Done's slow path, and timed for a slow-call circuit.
func (c *Breaker) allowClosed(w uint64) Token {
	return c.token(w&^0xff|uint64(Closed), w&slowBit != 0)
}

// token returns a marked token for a call admitted in state and generation
// w (with a trial's slot), timed if asked.
func (c *Breaker) token(w uint64, timed bool) Token {
	if !timed {
		return Token(w | tokenBit)
	}
	return Token(w&(0xff|timedGenMask<<genShift) | tokenBit | timedBit | c.micros()<<timedShift)
}

// trialDone takes the result of a half-open trial.
func (c *Breaker) trialDone(t Token, o outcome, err error) {
	slot := uint32(1) << (t >> slotShift & (maxSlots - 1))
	c.mu.Lock()
	gen := c.snap.Gen
	if !sameGen(c.word(c.snap), t) || c.snap.State != HalfOpen || c.slots&slot == 0 {
		c.mu.Unlock()
		c.count(c.view.Load(), o)
		return // an old generation's trial, or reported twice
	}
	if c.set.Trials < maxSlots || slot != 1<<(maxSlots-1) {
		c.slots &^= slot
	}
	c.held--
	c.view.Store(c.word(c.snap))
	c.mu.Unlock()
	c.count(c.view.Load(), o)
	switch o {
	case success, excluded:
		c.push(gen, opSuccess, true)
	case failure:
		if c.f.listeners.active() {
			c.failed(err)
		}
		c.push(gen, opFailure, true)
	case ignored:
		c.push(gen, opRelease, true)
	}
}

// force moves the circuit by hand.
func (c *Breaker) force(to State) {
	op := opForceClosed
	switch to {
	case Open:
		op = opForceOpen
	case Isolated:
		op = opForceIsolated
	}
	c.mu.Lock()
	gen := c.snap.Gen
	c.mu.Unlock()
	c.update(nil, gen, op)
}

// drain delivers the queued events, unless another goroutine is at it (it
// will deliver ours too).
func (c *Breaker) drain() {
	if c.events.queued.Load() == 0 {
		return // nothing queued: no lock
	}
	c.mu.Lock()
	if c.events.draining || len(c.events.pending) == 0 || c.ready == nil {
		c.mu.Unlock()
		return
	}
	select {
	case <-c.ready:
	default:
		c.mu.Unlock()
		return // register delivers them once c is ready
	}
	c.events.draining = true
	for len(c.events.pending) > 0 {
		batch := c.events.pending
		c.events.pending = nil
		c.events.queued.Add(-int32(len(batch)))
		c.mu.Unlock()
		for _, e := range batch {
			e.Breaker = c
			c.f.listeners.emit(e)
		}
		c.mu.Lock()
	}
	c.events.draining = false
	c.mu.Unlock()
}

// recordCall counts a call admitted in the closed generation gen into a
// rate circuit's local tally, and merges the tally into the window at once
// when it could trip the circuit, or arms the periodic merge. A call of a
// generation that ended is not counted: its window is gone.
func (c *Breaker) recordCall(gen uint64, failed bool) {
	tl := c.tally.Load()
	if tl == nil || tl.gen != gen {
		return
	}
	if tl.add(failed) || failed && c.couldTrip(tl) {
		c.flush()
		return
	}
	if !c.flushing.Load() {
		c.armFlush()
	}
}

// armFlush arms the periodic flush of a rate circuit's local counts.
func (c *Breaker) armFlush() {
	if c.flushing.CompareAndSwap(false, true) {
		c.f.clock.AfterFunc(c.flushEvery(), c.flushTick)
	}
}

func (c *Breaker) flushEvery() time.Duration {
	return max(c.set.Window/store.Buckets, time.Millisecond)
}

// couldTrip reports whether the local counts, with the window as last
// merged, reach the circuit's failure rate. The window's totals are exact
// only within the bucket they were merged in: once a bucket boundary has
// passed since, some of them may have aged out, and the local counts are
// merged at once (at most once per bucket) so that the store decides on
// the window as it is now.
func (c *Breaker) couldTrip(tl *tally) bool {
	calls, failed := tl.sum()
	now := c.bucketOf(c.f.clock.Now())
	c.mu.Lock()
	mc, mf := uint64(c.snap.Calls), uint64(c.snap.Failed)
	c.mu.Unlock()
	if mc > 0 && now != c.merged.Load() {
		return true
	}
	calls += mc
	failed += mf
	return calls >= uint64(max(c.set.MinCalls, 1)) && float64(failed) >= c.set.FailureRate*float64(calls)
}

// bucketOf returns the index of the window bucket of t, as [store.Window]
// counts them.
func (c *Breaker) bucketOf(t time.Time) int64 {
	return t.UnixNano() / int64(max(c.set.Window/store.Buckets, 1))
}

func (c *Breaker) flushTick() {
	c.flush()
	c.flushing.Store(false)
	if tl := c.tally.Load(); tl != nil {
		if calls, _ := tl.sum(); calls > 0 {
			c.armFlush()
		}
	}
}

// flush merges the local counts into the store's window.
func (c *Breaker) flush() {
	tl := c.tally.Load()
	if tl == nil {
		return
	}
	calls, failed := tl.take()
	if calls == 0 {
		return
	}
	if w := c.view.Load(); State(w&stateMask) != Closed || w>>genShift != tl.gen {
		return // counts of a closed period that ended: they no longer matter
	}
	c.merged.Store(c.bucketOf(c.f.clock.Now()))
	c.pushCounts(tl.gen, opRecord, false, int(calls), int(failed))
}

// status returns the circuit as this process sees it.
func (c *Breaker) status() Status {
	now := c.f.clock.Now()
	c.mu.Lock()
	s := c.snap
	st := Status{
		Name: c.name, State: s.State, Seq: c.events.seq, Failures: s.Failures,
		Calls: s.Calls, Failed: s.Failed, Until: s.Until, Config: c.cfg,
	}
	if s.State != Closed {
		st.OpenedAt = c.openedAt
	}
	if c.trans != nil {
		st.Transitions = *c.trans
	}
	sts := c.stripes
	c.mu.Unlock()
	if tl := c.tally.Load(); s.State == Closed && tl != nil && tl.gen == s.Gen {
		// This process's counts not merged into the window yet.
		calls, failed := tl.sum()
		st.Calls += int(calls)
		st.Failed += int(failed)
	}
	if st.Calls > 0 {
		st.FailureRatio = float64(st.Failed) / float64(st.Calls)
	}
	if st.State == Open {
		st.RetryAfter = roundUp(st.Until.Sub(now))
	}
	st.Counts = Counts{
		Success: sts.sum(successOf), Failure: c.failures.Load(), Excluded: c.excludedN.Load(),
		Ignored: c.ignoredN.Load(), Rejected: sts.sum(rejectedOf), StoreErrors: c.storeErrs.Load(),
	}
	return st
}

// detach stops the circuit's watch and reconciliation: from now on it works
// on its local state only (see armLocked for its timers). The factory
// calls it on Remove and Close.
func (c *Breaker) detach() {
	c.mu.Lock()
	c.detached.Store(true)
	if c.retry != nil {
		c.retry()
		c.retry = nil
	}
	watch := c.watch
	c.watch = nil
	c.mu.Unlock()
	if watch != nil {
		watch()
	}
}
