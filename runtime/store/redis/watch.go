package redis

import (
	"context"
	"strconv"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/purgatory-go/purgatory/runtime/store"
)

// maxReads bounds the reads a store makes at once for its watchers.
const maxReads = 8

// maxHints bounds the messages a circuit keeps while a read of it is in
// flight; past it, the circuit is read again instead.
const maxHints = 32

// hub is the store's side of Watch: one subscription to the channel, the
// watched circuits, and the reads that confirm what messages say.
type hub struct {
	conn    *conn         // the store's, for the reads
	health  time.Duration // see healthInterval
	onError func(error)

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	reads  chan struct{} // bounds the reads in flight for watchers

	mu      sync.Mutex
	tracks  map[string]*track // the watched circuits
	started bool
	closed  bool
	ps      *goredis.PubSub
	failing map[string]bool // episodes reported to onError, by kind
	// subscribes counts the subscriptions confirmed, each followed by
	// resyncAll (tests wait for it before forging a message).
	subscribes int
}

// track is what a store knows of one watched circuit.
type track struct {
	watchers map[*watcher]struct{}
	// known is the newest snapshot the store vouches for: read from the
	// record, or a message that only moved counters of known's generation
	// one step on.
	known    store.Snapshot
	hasKnown bool
	// delivered is the newest snapshot (by Seq) handed to the watchers.
	delivered    store.Snapshot
	hasDelivered bool
	reading      bool             // a read is in flight
	again        bool             // read once more when it ends
	hints        []store.Snapshot // messages that came during the read
}

type watcher struct{ fn func(store.Snapshot) }

// Watch implements [store.Store]: fn gets the snapshots of the named
// circuit that the store vouches for — the record as read when the watch
// starts and whenever the subscription is re-established, the records read
// to confirm published changes of state or generation, and published
// changes of counters within the generation it knows — until stop is
// called. fn must not block. (What a forged message can and cannot do: see
// the threat model in this file, above dispatch.)
func (s *Store) Watch(name string, fn func(store.Snapshot)) (stop func()) {
	return s.hub.watch(name, fn)
}

// watch adds fn to the watchers of the named circuit, and starts the
// subscription on the first call.
func (h *hub) watch(name string, fn func(store.Snapshot)) (stop func()) {
	w := &watcher{fn: fn}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return func() {}
	}
	t := h.tracks[name]
	if t == nil {
		t = &track{watchers: make(map[*watcher]struct{})}
		h.tracks[name] = t
	}
	t.watchers[w] = struct{}{}
	if !h.started {
		h.started = true
		h.wg.Add(1)
		go h.subscribe()
	}
	h.requestLocked(name, t)
	h.mu.Unlock()
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if t := h.tracks[name]; t != nil {
			delete(t.watchers, w)
			if len(t.watchers) == 0 {
				delete(h.tracks, name)
			}
		}
	}
}

// # The threat model of the watch
//
// A message is a hint, not the record: anybody with PUBLISH on the
// channel can send one. So the watchers get a message as it is only when
// it moves the counters of the generation the store knows (track.known)
// by exactly one Seq, with the same state, gen, until and level
// (judgeLocked). Any other message — a
// change of state or generation, a Seq jump, a Seq the record already had
// with other content — makes the store read the record and hand that over
// instead (requestLocked, confirm): at most one read in flight per
// circuit, and one more if hints came meanwhile (track.again, at most
// maxHints kept), at most maxReads at once per store. When the
// subscription is (re)established the store reads every watched record
// again (resyncAll). If a read shows a record older than a snapshot
// already handed out (track.delivered: a restore, or a forged counter
// message that got through), the store raises the record's seq past it
// (bump), so that the breakers, which order snapshots by seq, adopt the
// record.
//
// What someone who may PUBLISH on the channel but not write the keys can
// do: make every subscribed store read the records of watched circuits
// (at most one read per circuit at a time: load, not harm); raise a
// record's seq (through bump); and change, for one step, the counters a
// watcher sees within the current generation (failures, claimed,
// succeeded, calls, failed) — a process may then send one needless reset,
// skip one, or reject half-open calls locally until the next genuine
// change or the end of the trial lease. That bound holds because a
// breaker believes the store's answer to an operation it sent after
// seeing some Seq over that Seq: an answer with a lower Seq shows a record
// that stepped back, and is installed as it is (see package runtime,
// Reconciliation).
//
// What they cannot do: open, close, isolate or re-open a circuit
// anywhere, start a generation, lengthen an open period or a lease, change
// a backoff level (judgeLocked passes none of these on unread), or hand
// out a seq that hides the record from the breakers (bump raises the
// record past any seq handed out). Operations are unaffected: their
// replies are the record, never a message. TestForgedMessages and
// TestForgedMessagesBreakers (threat_test.go) forge messages against it.

// dispatch judges a published message (see the threat model above): it is
// kept as a hint while a read of its circuit is in flight, else judged
// against what the store knows.
func (h *hub) dispatch(payload string) {
	name, m, ok := parseMessage(payload)
	if !ok {
		return
	}
	h.mu.Lock()
	t := h.tracks[name]
	if t == nil {
		h.mu.Unlock()
		return
	}
	if t.reading {
		if len(t.hints) < maxHints {
			t.hints = append(t.hints, m)
		} else {
			t.again = true
		}
		h.mu.Unlock()
		return
	}
	fns := h.judgeLocked(name, t, m)
	h.mu.Unlock()
	call(fns, m)
}

// judgeLocked applies the rule of the threat model to message m of
// circuit name, and returns the watchers to hand m to (nil when it is
// stale or needs a read, which judgeLocked asks for). h.mu is held.
func (h *hub) judgeLocked(name string, t *track, m store.Snapshot) []func(store.Snapshot) {
	k := t.known
	switch {
	case !t.hasKnown:
	case same(m, k), m.Seq < k.Seq && m.Gen == k.Gen:
		return nil // a repeat, or stale
	case m.Seq < k.Seq:
		// Another generation with a lower Seq: stale (messages of one
		// Redis come in order, so hardly ever), or the record stepped
		// back (restored, or repaired after corruption). Read it: a record
		// older than what was handed out gets its Seq raised past it.
	case m.Seq == k.Seq+1 && m.State == k.State && m.Gen == k.Gen && m.Until.Equal(k.Until) && m.Level == k.Level:
		t.known = m
		return h.deliveredLocked(t, m)
	}
	// A change of state or generation, a jump, or a message that disagrees
	// with the record read at its Seq: read the record.
	h.requestLocked(name, t)
	return nil
}

// deliveredLocked notes that m is handed to t's watchers and returns them.
// h.mu is held.
func (h *hub) deliveredLocked(t *track, m store.Snapshot) []func(store.Snapshot) {
	if !t.hasDelivered || m.Seq > t.delivered.Seq {
		t.delivered, t.hasDelivered = m, true
	}
	fns := make([]func(store.Snapshot), 0, len(t.watchers))
	for w := range t.watchers {
		fns = append(fns, w.fn)
	}
	return fns
}

// same reports whether a and b are the same snapshot.
func same(a, b store.Snapshot) bool {
	u := a.Until.Equal(b.Until)
	a.Until, b.Until = time.Time{}, time.Time{}
	return u && a == b
}

func call(fns []func(store.Snapshot), snap store.Snapshot) {
	for _, fn := range fns {
		fn(snap)
	}
}

// requestLocked starts a read of the circuit's record for its watchers, or
// marks the one in flight to be done again. h.mu is held.
func (h *hub) requestLocked(name string, t *track) {
	if t.reading {
		t.again = true
		return
	}
	if h.closed {
		return
	}
	t.reading, t.again, t.hints = true, false, nil
	h.wg.Add(1)
	go h.confirm(name, t)
}

// confirm reads the circuit's record and hands it to the watchers, again
// as long as messages asked for it meanwhile, and retries (backing off)
// while Redis does not answer. If the record is older than a snapshot
// already handed out (the record went back in time, or a forged message
// got through as a counter change), it gives the record a Seq past that
// snapshot's, so that the watchers adopt it.
func (h *hub) confirm(name string, t *track) {
	defer h.wg.Done()
	backoff := 10 * time.Millisecond
	for {
		h.reads <- struct{}{}
		snap, ok, err := h.conn.get(h.ctx, name)
		<-h.reads
		if h.ctx.Err() != nil {
			return
		}
		h.mu.Lock()
		if h.tracks[name] != t {
			// The watch ended while the read was in flight; a Watch of the
			// name since made a new track, which started its own read.
			h.mu.Unlock()
			return
		}
		if err != nil {
			h.mu.Unlock()
			h.report("read", err)
			if !h.sleep(backoff) {
				return
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		h.episodeLocked("read", nil)
		var fns []func(store.Snapshot)
		var floor uint64
		if ok {
			if t.hasDelivered && (snap.Seq < t.delivered.Seq || snap.Seq == t.delivered.Seq && !same(snap, t.delivered)) {
				floor = t.delivered.Seq
			}
			t.known, t.hasKnown = snap, true
			fns = h.deliveredLocked(t, snap)
		}
		// Messages that came during the read are judged against it; one
		// that needs a read marks this one to be done again.
		type hint struct {
			fns []func(store.Snapshot)
			m   store.Snapshot
		}
		var later []hint
		for _, m := range t.hints {
			if f := h.judgeLocked(name, t, m); f != nil {
				later = append(later, hint{f, m})
			}
		}
		again := t.again
		t.hints, t.again, t.reading = nil, false, again
		h.mu.Unlock()
		// Each snapshot is handed over once, in Seq order: the record,
		// then the hints that moved on from it one step at a time.
		call(fns, snap)
		for _, l := range later {
			call(l.fns, l.m)
		}
		if floor > 0 {
			h.bump(name, t, floor)
		}
		if !again {
			return
		}
	}
}

// bump gives the circuit's record a Seq past floor and hands it to the
// watchers of t, unless their watch ended meanwhile.
func (h *hub) bump(name string, t *track, floor uint64) {
	snap, ok, err := h.conn.read(h.ctx, "bump", name, strconv.FormatUint(floor, 10))
	if err != nil {
		h.report("read", err)
		return
	}
	if !ok {
		return
	}
	h.mu.Lock()
	var fns []func(store.Snapshot)
	if h.tracks[name] == t {
		if snap.Seq > t.known.Seq {
			t.known = snap
		}
		fns = h.deliveredLocked(t, snap)
	}
	h.mu.Unlock()
	call(fns, snap)
}
