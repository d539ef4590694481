package store

import (
	"context"
	"fmt"
	"slices"
	"sync"
)

// Memory is a Store that keeps circuits in this process. It is the default
// store. Breakers from several factories that share one Memory share their
// circuits, as processes sharing one Redis do.
//
// A circuit's record is dropped when the last watcher of it stops (its
// breakers were removed, their factories closed or collected), whatever
// its state, so that per-key circuits do not pile up: in one process,
// nobody is left to share it with. A record made again under the name
// starts closed, with a Seq past every Seq the store handed out for the
// dropped one (the order of a name never goes back).
//
// The zero value is ready to use. A Memory must not be copied after first
// use.
type Memory struct {
	mu       sync.Mutex
	circuits map[string]*memCircuit
	floor    uint64 // the highest Seq of a dropped record
}

type memCircuit struct {
	set      Settings
	snap     Snapshot
	window   Window
	watchers []*watcher // copy-on-write: read after the lock is released
}

type watcher struct{ fn func(Snapshot) }

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory { return &Memory{} }

var (
	_ Store          = (*Memory)(nil)
	_ FailureBatcher = (*Memory)(nil)
	_ Immediate      = (*Memory)(nil)
)

// circuit returns the named circuit, creating it with s when absent.
// m.mu must be held.
func (m *Memory) circuit(name string, s Settings) *memCircuit {
	c, ok := m.circuits[name]
	if !ok {
		if m.circuits == nil {
			m.circuits = make(map[string]*memCircuit)
		}
		c = &memCircuit{snap: New()}
		c.snap.Seq += m.floor // past every Seq of a dropped record
		m.circuits[name] = c
	}
	if c.set == (Settings{}) {
		c.set = s // first registration, or a record made by Watch
	}
	return c
}

// Len returns how many circuit records the store holds.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.circuits)
}

// Register implements Store.
func (m *Memory) Register(_ context.Context, name string, s Settings) (Settings, Snapshot, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.circuit(name, s)
	return c.set, c.snap, nil
}

// apply applies the operation ch to the named circuit with [Snapshot.Apply]
// and tells the circuit's watchers when the snapshot changed.
func (m *Memory) apply(op *Op, ch *Change) (Snapshot, bool) {
	m.mu.Lock()
	c := m.circuit(op.Circuit, op.Settings)
	changed, granted := c.snap.Step(c.set, &c.window, op.Gen, op.Now, ch) // in place: no copy in and out
	snap := c.snap
	var ws []*watcher
	if changed {
		ws = c.watchers
	}
	m.mu.Unlock()
	for _, w := range ws {
		w.fn(snap)
	}
	return snap, granted
}

// do is apply for the operations that grant nothing.
func (m *Memory) do(op *Op, ch Change) (Snapshot, error) {
	snap, _ := m.apply(op, &ch)
	return snap, nil
}

// Immediate implements [Immediate]: a Memory never waits.
func (*Memory) Immediate() {}

// Failure implements Store.
func (m *Memory) Failure(_ context.Context, op Op) (Snapshot, error) {
	return m.do(&op, Change{Kind: Failure})
}

// Failures implements [FailureBatcher].
func (m *Memory) Failures(_ context.Context, op Op, n int) (Snapshot, error) {
	if n < 1 {
		return Snapshot{}, fmt.Errorf("purgatory/store: failures %q: bad count %d (want at least 1)", op.Circuit, n)
	}
	return m.do(&op, Change{Kind: Failures, N: n})
}

// Success implements Store.
func (m *Memory) Success(_ context.Context, op Op) (Snapshot, error) {
	return m.do(&op, Change{Kind: Success})
}

// Claim implements Store.
func (m *Memory) Claim(_ context.Context, op Op) (Snapshot, bool, error) {
	snap, granted := m.apply(&op, &Change{Kind: Claim, Skew: op.Skew})
	return snap, granted, nil
}

// Release implements Store.
func (m *Memory) Release(_ context.Context, op Op) (Snapshot, error) {
	return m.do(&op, Change{Kind: Release})
}

// Expire implements Store.
func (m *Memory) Expire(_ context.Context, op Op) (Snapshot, error) {
	return m.do(&op, Change{Kind: Expire, Skew: op.Skew})
}

// Force implements Store.
func (m *Memory) Force(_ context.Context, op Op, to State) (Snapshot, error) {
	return m.do(&op, Change{Kind: Force, To: to})
}

// Record implements Store.
func (m *Memory) Record(_ context.Context, op Op, calls, failed int) (Snapshot, error) {
	return m.do(&op, Change{Kind: Record, N: calls, Failed: failed})
}

// Reconcile implements Store.
func (m *Memory) Reconcile(_ context.Context, op Op, base uint64, want Snapshot) (Snapshot, error) {
	return m.do(&op, Change{Kind: Reconcile, Base: base, Want: want})
}

// Watch implements Store.
func (m *Memory) Watch(name string, fn func(Snapshot)) (stop func()) {
	w := &watcher{fn: fn}
	m.mu.Lock()
	// Watching before registering is allowed: the record's settings are
	// filled in by the first Register or operation.
	c := m.circuit(name, Settings{})
	c.watchers = append(slices.Clip(c.watchers), w)
	m.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			m.mu.Lock()
			defer m.mu.Unlock()
			c.watchers = slices.DeleteFunc(slices.Clone(c.watchers), func(x *watcher) bool { return x == w })
			if len(c.watchers) == 0 && m.circuits[name] == c {
				m.floor = max(m.floor, c.snap.Seq)
				delete(m.circuits, name)
			}
		})
	}
}
