package runtime

import (
	"sync"

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
// one Success, adjacent rate counts of one generation one Record. So a
// burst of failures across many goroutines costs one round trip, and a
// frozen store holds no caller: the pusher's calls are bounded by the
// store timeout, and when one fails the breaker goes on with its local
// state as it would have on the caller's path (see update).
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
	spare   []pushItem // the other buffer: the two are swapped, not reallocated
	running bool       // a pusher goroutine is draining items
}

// inline reports whether results are applied on the caller's path: the
// store never blocks, or there is none, or the circuit is detached.
func (b *Breaker) inline() bool {
	if b.f.private || b.flags.has(flagDetached) {
		return true
	}
	_, ok := b.f.store.(store.Immediate)
	return ok
}

// push reports a result of generation gen to the store: at once when the
// store never blocks, else through the circuit's pusher.
func (b *Breaker) push(gen uint64, op store.Kind, trial bool) { b.pushCounts(gen, op, trial, 0, 0) }

// pushCounts is push with a rate flush's counts (Record).
func (b *Breaker) pushCounts(gen uint64, op store.Kind, trial bool, calls, failed int) {
	it := pushItem{op: op, gen: gen, trial: trial, n: 1, calls: calls, failed: failed}
	if b.inline() {
		c := it.change()
		b.update(nil, gen, &c)
		return
	}
	q := b.pushq.Load()
	if q == nil {
		b.pushq.CompareAndSwap(nil, new(pushQueue)) // the first result pushed
		q = b.pushq.Load()
	}
	q.mu.Lock()
	if n := len(q.items); n > 0 {
		last := &q.items[n-1]
		if last.op == op && last.gen == gen && last.trial == trial {
			switch {
			case op == store.Failure:
				last.n++
				q.mu.Unlock()
				return
			case op == store.Success && !trial:
				q.mu.Unlock()
				return // a closed success resets pending failures: once is enough
			case op == store.Record:
				last.calls += calls
				last.failed += failed
				q.mu.Unlock()
				return
			}
		}
	}
	q.items = append(q.items, it)
	start := !q.running
	q.running = true
	q.mu.Unlock()
	if start {
		go b.pushLoop()
	}
}

// pushLoop sends the queue to the store until it is empty.
func (b *Breaker) pushLoop() {
	q := b.pushq.Load()
	for {
		q.mu.Lock()
		items := q.items
		if len(items) == 0 {
			q.running = false
			q.mu.Unlock()
			return
		}
		q.items = q.spare[:0]
		q.mu.Unlock()
		for _, it := range items {
			c := it.change()
			b.update(nil, it.gen, &c)
		}
		clear(items)
		q.mu.Lock()
		q.spare = items[:0]
		q.mu.Unlock()
	}
}

// change returns the store operation of it: coalesced failures become
// one Failures operation (one store call when the store batches them).
func (it pushItem) change() store.Change {
	switch it.op {
	case store.Failure:
		if it.n > 1 {
			return store.Change{Kind: store.Failures, N: it.n}
		}
	case store.Record:
		return store.Change{Kind: store.Record, N: it.calls, Failed: it.failed}
	}
	return store.Change{Kind: it.op}
}
