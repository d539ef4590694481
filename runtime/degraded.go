package runtime

import (
	"fmt"
	"time"

	"github.com/purgatory-go/purgatory/runtime/store"
)

// This file: degraded mode: applying operations locally while the store
// fails, and reconciling with it once it answers again.

// applyLocal applies the operation c of generation gen, at now, to the
// local snapshot in place (the same table of transitions a store applies:
// see [store.Snapshot.Step]), and stores the snapshot after it in *out
// unless out is nil. A zero now is a clock the caller did not read:
// applyLocal reads it if the transition needs it (see
// [store.Snapshot.Timed]), so that a failure that does not trip the
// circuit costs no clock reading.
func (rep *replica) applyLocal(gen uint64, now time.Time, c *store.Change, out *store.Snapshot) (granted bool) {
	b := rep.b
	b.mu.Lock()
	// A claim when this process holds every slot already is no claim.
	if c.Kind != store.Claim || b.peek().leases.n() < b.set.Trials {
		w := b.peek().window
		if c.Kind == store.Record && w == nil {
			w = new(store.Window)
			b.edit().window = w
		}
		if now.IsZero() && b.snap.Timed(b.set, gen, c) {
			now = b.f.clock.Now()
		}
		prev := b.snap
		var changed bool
		changed, granted = b.snap.Step(b.set, w, gen, now, c)
		if changed {
			if b.snap.Gen != prev.Gen && !b.peek().diverged && !b.storeless() {
				r := b.edit()
				r.diverged, r.base, r.baseGen = true, b.link.storeSeq.Load(), prev.Gen
				b.link.armRetryLocked()
			}
			b.changedLocked(&prev, now)
		}
	}
	if out != nil {
		*out = b.snap
	}
	b.mu.Unlock()
	b.drain()
	return granted
}

// reconcile pushes a state the circuit reached while the store was away,
// before any other operation (see the package doc). It reports whether the
// store answered. The caller read want (the local snapshot), base and
// baseGen under b.mu, when it found the circuit diverged.
func (l *storeLink) reconcile(o store.Op, want store.Snapshot, base, baseGen uint64) bool {
	b := l.b
	sctx, cancel := l.storeCtx(nil)
	defer cancel()
	var got store.Snapshot
	var err error
	installs := l.installs.Load() // see stepBack
	for range 4 {
		got, err = b.f.store.Reconcile(sctx, o, base, want)
		_, err = l.appliedAnyway(err)
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
		l.storeFailed(err)
		return false
	}
	b.flags.clear(flagDegraded)
	now := b.f.clock.Now()
	b.mu.Lock()
	r := b.edit()
	if r.diverged {
		r.leases.dropLocal()
		b.view.Store(b.viewOf(&b.snap))
	}
	r.diverged = false
	if r.retry != nil {
		r.retry()
		r.retry = nil
	}
	var installed bool
	if got.Seq < base && l.installs.Load() == installs {
		// The record is older than what this process saw of it (a forged
		// message got through, or the store lost writes): the answer is
		// the record, installed as it is (see stepBack). Adopting it by
		// Seq would ignore it, and leave this process on its own state
		// for ever.
		l.installLocked(got, got.Seq, now)
		installed = true
	} else {
		// Pushed (a new generation of ours), or the record won: adopt it.
		installed = got.Seq != base && l.adoptLocked(got, now)
	}
	b.mu.Unlock()
	if installed {
		b.drain()
	}
	return true
}

// armRetryLocked makes sure a diverged circuit reconciles, and one whose
// registration failed registers, even if no call comes. b.mu is held.
func (l *storeLink) armRetryLocked() {
	b := l.b
	r := b.edit()
	if r.retry != nil || b.flags.has(flagDetached) {
		return
	}
	r.retry = b.f.clock.AfterFunc(storeBackoff, l.retryTick)
}

func (l *storeLink) retryTick() {
	b := l.b
	b.mu.Lock()
	r := b.edit()
	r.retry = nil
	unreg := r.unreg && !b.flags.has(flagDetached)
	b.mu.Unlock()
	if unreg && !l.registerAgain() {
		b.mu.Lock()
		l.armRetryLocked()
		b.mu.Unlock()
		return
	}
	b.mu.Lock()
	again := r.diverged && !b.flags.has(flagDetached)
	want, base, baseGen := b.snap, r.base, r.baseGen
	b.mu.Unlock()
	if !again {
		return
	}
	o := store.Op{Circuit: b.name, Settings: b.set, Now: b.f.clock.Now()}
	if !l.reconcile(o, want, base, baseGen) {
		b.mu.Lock()
		l.armRetryLocked()
		b.mu.Unlock()
	}
}

// storeFailed reports a store error once per episode and backs off.
func (l *storeLink) storeFailed(err error) {
	b := l.b
	b.mu.Lock()
	l.storeFailedLocked(err)
	b.mu.Unlock()
	b.drain()
}

func (l *storeLink) storeFailedLocked(err error) {
	b := l.b
	b.storeErrs.Add(1)
	first := !b.flags.has(flagDegraded)
	b.flags.set(flagDegraded)
	r := b.edit()
	r.retryAt = b.f.clock.Now().Add(storeBackoff)
	b.f.outage.Store(&outage{until: r.retryAt, err: err})
	if first {
		b.events.post(Event{Kind: EventStoreError, Circuit: b.name, Err: err})
	}
}

// outage is a store failure a factory remembers for the back-off period, so
// that registering more circuits meanwhile does not wait for the store
// again: a frozen store holds one registration per back-off, not one per
// name (per-key circuits). A circuit registered so works on local state and
// meets the store at its first operation after the back-off (which creates
// the record, or reports a configuration conflict).
type outage struct {
	until time.Time
	err   error
}

func (o *outage) skip(name string) error {
	return fmt.Errorf("purgatory: circuit %q: not registered with the store, which failed just before: %w", name, o.err)
}
