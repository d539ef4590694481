package status

import (
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	purgatory "github.com/purgatory-go/purgatory/runtime"
)

// What the handler remembers of each circuit, beyond what the runtime keeps:
// its last KeepTransitions state changes and the text of its last failure,
// recorded by a listener on the factory from the moment the handler is made.
const (
	// KeepTransitions is how many state changes the handler keeps per
	// circuit, in a ring: 16 bytes each, allocated as they happen.
	KeepTransitions = 32
	// MaxErrorText is the most bytes of a failure's error text kept (cut
	// at a character boundary, marked with "…").
	MaxErrorText = 200
)

// A circuit that never changed state nor failed since the handler was made
// costs the handler nothing; one that did costs at most about
// 96 + 16×KeepTransitions + MaxErrorText bytes (under 1 KiB), dropped when
// the circuit is removed from the factory.

type transition struct {
	at       int64 // unix nanoseconds, by Options.Now
	from, to purgatory.State
}

type history struct {
	mu      sync.Mutex
	ring    []transition // oldest first until full; then next is the oldest
	next    int
	horizon int64  // when the newest dropped transition happened; 0: none dropped
	errText string // the last failure's error text, bounded
	errAt   int64
}

func (h *history) add(t transition) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.ring) < KeepTransitions {
		h.ring = append(h.ring, t)
		return
	}
	h.horizon = h.ring[h.next].at
	h.ring[h.next] = t
	h.next = (h.next + 1) % KeepTransitions
}

func (h *history) fail(at int64, text string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.errText != text {
		h.errText = text
	}
	h.errAt = at
}

// view is a copy of a history, transitions oldest first.
type view struct {
	transitions []transition
	horizon     int64
	errText     string
	errAt       int64
}

func (h *history) view() view {
	h.mu.Lock()
	defer h.mu.Unlock()
	v := view{horizon: h.horizon, errText: h.errText, errAt: h.errAt}
	v.transitions = make([]transition, 0, len(h.ring))
	v.transitions = append(v.transitions, h.ring[h.next:]...)
	v.transitions = append(v.transitions, h.ring[:h.next]...)
	return v
}

// recorder is the handler's listener.
type recorder struct {
	f       *purgatory.Factory
	now     func() time.Time
	started int64
	m       sync.Map // circuit name -> *history
	n       atomic.Int64
	// members grows with every circuit created or removed: the handler
	// keeps the factory's sorted list of breakers while it stays the same.
	members atomic.Uint64
	closed  atomic.Bool // Handler.Close: no more events
}

func (r *recorder) get(name string) *history {
	if v, ok := r.m.Load(name); ok {
		return v.(*history)
	}
	v, loaded := r.m.LoadOrStore(name, &history{})
	if !loaded {
		r.n.Add(1)
	}
	return v.(*history)
}

// OnEvent records state changes and failures, and forgets removed circuits.
func (r *recorder) OnEvent(e purgatory.Event) {
	switch e.Kind {
	case purgatory.EventCreated:
		r.members.Add(1)
	case purgatory.EventStateChanged:
		r.get(e.Circuit).add(transition{at: r.now().UnixNano(), from: e.From, to: e.To})
	case purgatory.EventFailure:
		if e.Err == nil {
			return
		}
		if _, ok := r.f.Lookup(e.Circuit); !ok {
			return // a late failure of a removed circuit
		}
		r.get(e.Circuit).fail(r.now().UnixNano(), bound(e.Err.Error(), MaxErrorText))
	case purgatory.EventRemoved:
		r.members.Add(1)
		if _, ok := r.m.LoadAndDelete(e.Circuit); ok {
			r.n.Add(-1)
		}
	}
}

// lookup returns what is known of a circuit.
func (r *recorder) lookup(name string) (view, bool) {
	v, ok := r.m.Load(name)
	if !ok {
		return view{}, false
	}
	return v.(*history).view(), true
}

// prune forgets circuits the factory no longer has (events of a removed
// circuit that came after its removal). Called when the recorder holds more
// circuits than the factory.
func (r *recorder) prune() {
	r.m.Range(func(k, _ any) bool {
		if _, ok := r.f.Lookup(k.(string)); !ok {
			if _, ok := r.m.LoadAndDelete(k); ok {
				r.n.Add(-1)
			}
		}
		return true
	})
}

// bound cuts s to at most n bytes at a character boundary, marking the cut.
func bound(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
