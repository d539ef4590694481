package runtime

import (
	"sync"
	"sync/atomic"

	"github.com/purgatory-go/purgatory/runtime/store"
)

// The pusher: results reach a store that may block (Redis) off the
// caller's path.
//
// Done never waits for such a store. It queues the result, and one pusher
// goroutine per circuit, started when the queue gets its first item and
// gone when it is empty, sends the queue to the store in order, each result
// exactly once. Results that accumulated while the pusher's last store call
// ran are coalesced: adjacent failures of one generation become one
// [store.FailureBatcher] call, adjacent closed successes of one generation
// one Success, adjacent rate counts of one generation one Record, and
// failures and successes alternating in one generation at most three calls
// (see resetQueued). So a burst of failures across many goroutines costs
// one round trip, and a frozen store holds no caller: the pusher's calls
// are bounded by the store timeout, and when one fails the breaker goes on
// with its local state as it would have on the caller's path (see update).
//
// A closed success sends a reset only when the view has pendingBit, which
// the store's answer sets once it counts a failure. A success that comes
// before that answer must reset this process's failure all the same, in
// order behind it: from the moment a closed failure is queued until the
// pusher has sent it and adopted the answer, the view has pendingBit in
// that generation (owed), and a success queues a reset, which the store
// applies only in the generation the failure was counted in. Setting the
// bit takes b.mu once per such period, and so does dropping it, which the
// pusher does as soon as no failure is left to send: from then on the
// store's count decides again, so successes that keep the pusher busy do
// not keep the bit (each of them would queue a reset).
//
// The local view changes when the store's answer is adopted: a trip made by
// this process's failures shows once the pusher's call returns (one round
// trip after the failure that caused it), as a trip made by another
// process shows once its message arrives. Half-open trial claims still ask
// the store on the caller's path, bounded by the caller's context.
//
// A store that never waits ([store.Immediate]: the memory store), a factory without a store
// and a detached circuit apply results at once, on the caller's path, as
// before.

// pushItem is one queued result, or a run of coalesced ones.
type pushItem struct {
	op    store.Kind // Failure, Success, Release or Record
	gen   uint64
	trial bool // a half-open trial's result: never coalesced but failures
	// n counts coalesced failures (Failure); calls and failed are the
	// summed counts of Record.
	n, calls, failed int
}

// pushQueue is a circuit's queue of results for the store.
type pushQueue struct {
	mu      sync.Mutex
	items   []pushItem
	spare   []pushItem    // the other buffer: the two are swapped, not reallocated
	running bool          // a pusher goroutine is draining items
	rounds  uint64        // batches the pusher sent (see settle)
	round   chan struct{} // closed, then dropped, at the end of a batch and when the pusher stops; made by settle
	// owed is the closed generation of the newest failure queued, 0 once
	// the pusher sent every failure queued: a success of that generation
	// owes the store a reset (see viewOf). Written under mu, read without
	// it.
	owed atomic.Uint64
}

// owes reports whether a closed success of generation gen must send a
// reset for a failure of this process still on its way to the store. q may
// be nil: nothing was ever pushed.
func (q *pushQueue) owes(gen uint64) bool {
	if q == nil {
		return false
	}
	g := q.owed.Load()
	return g != 0 && g == gen
}

// refreshPending stores the view again after owed changed, so that it has
// pendingBit exactly while a reset is owed or the store counts failures.
// Storing it under b.mu orders it with every other store of the view:
// one computed before owed changed cannot overwrite it.
func (l *storeLink) refreshPending() {
	b := l.b
	b.mu.Lock()
	if b.snap.State == Closed {
		b.view.Store(b.viewOf(&b.snap))
	}
	b.mu.Unlock()
}

// queued reports whether results wait for the pusher, or it runs.
func (l *storeLink) queued() bool {
	q := l.pushq.Load()
	if q == nil {
		return false
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.running || len(q.items) > 0
}

// queues reports whether results go to the store through the pusher:
// the store may block, and the circuit is not detached. Otherwise they are
// applied on the caller's path.
func (l *storeLink) queues() bool {
	if l.b.flags.has(flagDetached) {
		return false
	}
	_, ok := l.b.f.store.(store.Immediate)
	return !ok
}

// push reports a result of generation gen to the store: at once when the
// store never blocks, else through the circuit's pusher.
func (rep *replica) push(gen uint64, op store.Kind, trial bool) {
	rep.b.pushCounts(gen, op, trial, 0, 0)
}

// pushCounts is push with a rate flush's counts (Record).
func (rep *replica) pushCounts(gen uint64, op store.Kind, trial bool, calls, failed int) {
	b := rep.b
	it := pushItem{op: op, gen: gen, trial: trial, n: 1, calls: calls, failed: failed}
	if l := b.link; l != nil && l.queues() {
		l.enqueue(it)
		return
	}
	var c store.Change
	it.change(&c)
	b.update(nil, gen, &c, nil)
}

// enqueue queues it for the pusher, coalesced with the last item when it
// can be, and starts the pusher if none runs.
func (l *storeLink) enqueue(it pushItem) {
	b := l.b
	q := l.pushq.Load()
	if q == nil {
		l.pushq.CompareAndSwap(nil, new(pushQueue)) // the first result pushed
		q = l.pushq.Load()
	}
	q.mu.Lock()
	if it.op == store.Success && !it.trial && (b.resetMoot(q, it.gen) || q.resetQueued(it.gen, b.set.Threshold, l.batches)) {
		q.mu.Unlock()
		return
	}
	if n := len(q.items); n > 0 {
		last := &q.items[n-1]
		if last.op == it.op && last.gen == it.gen && last.trial == it.trial {
			switch {
			case it.op == store.Failure:
				last.n++
				q.mu.Unlock()
				return
			case it.op == store.Record:
				last.calls += it.calls
				last.failed += it.failed
				q.mu.Unlock()
				return
			}
		}
	}
	q.items = append(q.items, it)
	start := !q.running
	q.running = true
	owed := it.op == store.Failure && !it.trial && q.owed.Swap(it.gen) != it.gen
	q.mu.Unlock()
	if owed {
		l.refreshPending() // before Done returns: the caller's next success sees it
	}
	if start {
		go l.pushLoop()
	}
}

// resetMoot reports whether a closed success of generation gen needs no
// reset any more: the view lost pendingBit after the caller read it (the
// store's answer to a reset in flight came, showing no failure) and no
// failure of this process is queued. Without this check, a success read
// before that answer and queued after the pusher took the last reset would
// cost one more store call, however many successes had been coalesced
// before it. q.mu is held.
func (b *Breaker) resetMoot(q *pushQueue, gen uint64) bool {
	w := b.view.Load()
	return word(w).gen() == gen && w&(stateMask|pendingBit) == 0 && !q.owes(gen)
}

// resetQueued reports whether a closed success of generation gen needs no
// item of its own, the queue's last closed items of gen making it
// redundant, and drops what it makes redundant. q.mu is held.
//
// The queue keeps at most three closed items of a generation (failures,
// reset, failures) however results alternate, not one per alternation,
// which the pusher, one round trip per item, could not keep up with (and
// the trials' results queued behind them would wait for):
//   - after a reset: once is enough;
//   - after a run of threshold failures or more, on a store that takes it
//     in one step (batches: a [store.FailureBatcher]): the run trips the
//     circuit, and its generation ends with it (sent as one Failure call
//     each, another process's reset could land between them);
//   - after a reset and a run shorter than the threshold: the run is
//     dropped, the reset stands for both. Applied after that reset, the run
//     cannot trip the circuit by itself, and the count after the second
//     reset is what it is after the first; only failures of other
//     processes applied between the two could have made a difference, and
//     the pusher promises no place among those.
//
// A run with no reset before it is never dropped: with the failures
// counted before it, it may reach the threshold.
func (q *pushQueue) resetQueued(gen uint64, threshold int, batches bool) bool {
	closed := func(i int, op store.Kind) bool {
		return i >= 0 && q.items[i].op == op && q.items[i].gen == gen && !q.items[i].trial
	}
	n := len(q.items)
	switch {
	case closed(n-1, store.Success):
		return true
	case !closed(n-1, store.Failure):
		return false
	case q.items[n-1].n >= threshold:
		return batches
	case closed(n-2, store.Success):
		q.items = q.items[:n-1]
		return true
	}
	return false
}

// failureQueued reports whether a closed failure waits in the queue. q.mu
// is held.
func (q *pushQueue) failureQueued() bool {
	for _, it := range q.items {
		if it.op == store.Failure && !it.trial {
			return true
		}
	}
	return false
}

// pushLoop sends the queue to the store until it is empty.
func (l *storeLink) pushLoop() {
	b := l.b
	q := l.pushq.Load()
	for {
		q.mu.Lock()
		items := q.items
		// Unless a failure waits in items, every failure queued was sent
		// and its answer adopted: no reset is owed any more.
		owed := !q.failureQueued() && q.owed.Swap(0) != 0
		if len(items) == 0 {
			q.running = false
			q.wakeLocked()
			q.mu.Unlock()
			if owed {
				l.refreshPending()
			}
			return
		}
		q.items = q.spare[:0]
		q.mu.Unlock()
		if owed {
			l.refreshPending()
		}
		for _, it := range items {
			var c store.Change
			it.change(&c)
			b.update(nil, it.gen, &c, nil)
		}
		clear(items)
		q.mu.Lock()
		q.spare = items[:0]
		q.rounds++
		q.wakeLocked()
		q.mu.Unlock()
	}
}

// wakeLocked wakes the settle calls waiting for the pusher. q.mu is held.
func (q *pushQueue) wakeLocked() {
	if q.round != nil {
		close(q.round)
		q.round = nil
	}
}

// settle waits until the results queued when it is called were sent to
// the store (each store call bounded by storeTimeout), the pusher being
// idle then; or until stop is closed. Factory.Close calls it.
func (l *storeLink) settle(stop <-chan struct{}) {
	q := l.pushq.Load()
	if q == nil {
		return
	}
	q.mu.Lock()
	need := q.rounds + 1 // the batch in flight...
	if len(q.items) > 0 {
		need++ // ...and the one after it, which takes what is queued
	}
	for q.running && q.rounds < need {
		if q.round == nil {
			q.round = make(chan struct{})
		}
		ch := q.round
		q.mu.Unlock()
		select {
		case <-ch:
		case <-stop:
			return
		}
		q.mu.Lock()
	}
	q.mu.Unlock()
}

// change fills the zero *c with the store operation of it: coalesced
// failures become one Failures operation (one store call when the store
// batches them). It fills c in place, not returned, so that the inline
// path copies no Change (a Change carries a whole Snapshot).
func (it pushItem) change(c *store.Change) {
	c.Kind = it.op
	switch it.op {
	case store.Failure:
		if it.n > 1 {
			c.Kind, c.N = store.Failures, it.n
		}
	case store.Record:
		c.N, c.Failed = it.calls, it.failed
	}
}
