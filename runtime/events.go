package runtime

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
)

// EventKind says what happened to a circuit.
type EventKind uint8

// The kinds of [Event].
const (
	// EventCreated: a factory created the breaker (Config holds its settings).
	EventCreated EventKind = iota + 1
	// EventStateChanged: the circuit moved From one state To another.
	EventStateChanged
	// EventFailure: a call failed (Err); Failures is the consecutive count
	// this breaker saw, including this one.
	EventFailure
	// EventRecovered: trial calls succeeded and the circuit closed again (a
	// Close by hand of a half-open circuit is a state change only).
	EventRecovered
	// EventRejected: a call was rejected (Err is the *OpenError).
	EventRejected
	// EventConfigConflict: the circuit was registered again with a different
	// configuration (Err says how); the first one stays in force.
	EventConfigConflict
	// EventStoreError: the store failed (Err); the breaker carries on with
	// its local state. Reported once per episode, not once per call.
	EventStoreError
	// EventRemoved: [Factory.Remove] dropped the circuit; exporters may
	// drop its series.
	EventRemoved
)

// String returns the kind's name, such as "state-changed".
func (k EventKind) String() string {
	switch k {
	case EventCreated:
		return "created"
	case EventStateChanged:
		return "state-changed"
	case EventFailure:
		return "failure"
	case EventRecovered:
		return "recovered"
	case EventRejected:
		return "rejected"
	case EventConfigConflict:
		return "config-conflict"
	case EventStoreError:
		return "store-error"
	case EventRemoved:
		return "removed"
	}
	return "invalid"
}

// Event is what listeners receive. Which fields are set depends on Kind.
type Event struct {
	Kind    EventKind
	Circuit string // the circuit's name
	// Breaker is the breaker the event is about. After EventRemoved it is
	// no longer the factory's: exporters read its last counts there.
	Breaker *Breaker
	// Seq orders the events of one circuit: it grows with every created,
	// state-changed, recovered, config-conflict and store-error event;
	// failure and rejected events carry the Seq of the latest of those.
	Seq      uint64
	From, To State  // EventStateChanged; To also for EventRecovered (Closed)
	Failures int    // EventFailure
	Err      error  // EventFailure, EventRejected, EventConfigConflict, EventStoreError
	Config   Config // the configuration in force: EventCreated, EventConfigConflict
}

// Listener receives events.
//
// Events of one circuit reach a listener in order, one at a time: the
// created, state-changed, recovered, config-conflict, store-error and
// removed events of a circuit are queued as they happen and delivered by whichever
// goroutine finds the queue idle, outside every lock, so a listener may
// call back into the factory (Lookup, Breaker, Open, Close, ...) without
// deadlock; what it causes is delivered after it returns. Failure and
// rejected events, which come with calls and may be frequent, are delivered
// at once by the calling goroutine and so may interleave with the others;
// their Seq tells which change they follow.
//
// OnEvent must be quick and must not block; different circuits' events may
// arrive from many goroutines at once. A panic in OnEvent is recovered and
// dropped: it never breaks the breaker.
type Listener interface {
	OnEvent(Event)
}

// ListenerFunc adapts a function to [Listener].
type ListenerFunc func(Event)

// OnEvent calls f(e).
func (f ListenerFunc) OnEvent(e Event) { f(e) }

// listeners is a copy-on-write list, read without a lock.
type listeners struct {
	mu   sync.Mutex
	list atomic.Pointer[[]*listenerEntry]
}

type listenerEntry struct{ l Listener }

func (ls *listeners) add(l Listener) (remove func()) {
	e := &listenerEntry{l}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	var list []*listenerEntry
	if p := ls.list.Load(); p != nil {
		list = append(list, *p...)
	}
	list = append(list, e)
	ls.list.Store(&list)
	return func() {
		ls.mu.Lock()
		defer ls.mu.Unlock()
		p := ls.list.Load()
		if p == nil {
			return
		}
		var kept []*listenerEntry
		for _, x := range *p {
			if x != e {
				kept = append(kept, x)
			}
		}
		if len(kept) == 0 {
			ls.list.Store(nil)
			return
		}
		ls.list.Store(&kept)
	}
}

// active reports cheaply whether anybody listens.
func (ls *listeners) active() bool { return ls.list.Load() != nil }

func (ls *listeners) emit(e Event) {
	p := ls.list.Load()
	if p == nil {
		return
	}
	for _, x := range *p {
		deliver(x.l, e)
	}
}

func deliver(l Listener, e Event) {
	defer func() { _ = recover() }() // a listener's panic must not break the breaker
	l.OnEvent(e)
}

// NewSlogListener returns a listener that logs state changes at
// slog.LevelWarn and the other events at slog.LevelDebug. A nil logger
// means slog.Default().
func NewSlogListener(logger *slog.Logger) Listener {
	if logger == nil {
		logger = slog.Default()
	}
	return slogListener{logger}
}

type slogListener struct{ log *slog.Logger }

func (s slogListener) OnEvent(e Event) {
	ctx := context.Background()
	level := slog.LevelDebug
	if e.Kind == EventStateChanged {
		level = slog.LevelWarn
	}
	if !s.log.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{slog.String("circuit", e.Circuit), slog.String("event", e.Kind.String()),
		slog.Uint64("seq", e.Seq)}
	switch e.Kind {
	case EventStateChanged:
		attrs = append(attrs, slog.String("from", e.From.String()), slog.String("to", e.To.String()))
	case EventFailure:
		attrs = append(attrs, slog.Int("failures", e.Failures))
	case EventCreated, EventConfigConflict:
		attrs = append(attrs, slog.Int("threshold", e.Config.Threshold),
			slog.Duration("ttl", e.Config.TTL), slog.Int("trials", e.Config.Trials))
	}
	if e.Err != nil {
		attrs = append(attrs, slog.String("error", e.Err.Error()))
	}
	s.log.LogAttrs(ctx, level, "purgatory: "+e.Kind.String(), attrs...)
}

// eventQueue delivers a circuit's ordered events (see [Listener]).
type eventQueue struct {
	seq      uint64
	pending  []Event
	draining bool
	queued   atomic.Int32  // len(pending), read without the circuit's lock
	last     atomic.Uint64 // seq, read without the circuit's lock
}

// post queues e with the next sequence number. The circuit's lock is held.
func (q *eventQueue) post(e Event) {
	q.seq++
	q.last.Store(q.seq)
	e.Seq = q.seq
	q.pending = append(q.pending, e)
	q.queued.Add(1)
}

// drain delivers the queued events, unless another goroutine is at it (it
// will deliver ours too).
func (rep *replica) drain() {
	b := rep.b
	if b.events.queued.Load() == 0 {
		return // nothing queued: no lock
	}
	b.mu.Lock()
	if b.events.draining || len(b.events.pending) == 0 {
		b.mu.Unlock()
		return
	}
	if !b.flags.has(flagReady) {
		b.mu.Unlock()
		return // register delivers them once b is ready
	}
	b.events.draining = true
	for len(b.events.pending) > 0 {
		batch := b.events.pending
		b.events.pending = nil
		b.events.queued.Add(-int32(len(batch)))
		b.mu.Unlock()
		for _, e := range batch {
			e.Breaker = b
			b.f.listeners.emit(e)
		}
		b.mu.Lock()
	}
	b.events.draining = false
	b.mu.Unlock()
}
