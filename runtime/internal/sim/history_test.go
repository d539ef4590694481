package sim

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	purgatory "github.com/purgatory-go/purgatory/runtime"
)

// A history is what a seed draws: the fleet, its circuits, and the actions
// that happen before the faults heal. The healthy phase, the burst and the
// final Close follow from it.
type history struct {
	seed    int64
	nproc   int
	offsets []time.Duration
	drifts  []float64
	skew    time.Duration // the largest clock offset (see world.skew)
	// beyond: the clocks may disagree by more than the fleet's documented
	// bound (purgatory.DefaultClockSkew, which every process uses): up to
	// 10 % more. Leases of the slower clocks may then be cut short, so
	// such a history is held to liveness, not to the lease invariant.
	beyond   bool
	circuits []circuitSpec
	actions  []action
	T        time.Duration // when faults heal
	burst    bool
}

type circuitSpec struct {
	name        string
	cfg         purgatory.Config
	variant     purgatory.Config // a rolling deploy: other settings in some processes
	variantMask uint             // processes registering variant
	callers     uint             // processes calling in the healthy phase
	interval    time.Duration    // how often each caller calls then
	ignore      bool             // registered with Config.Ignore = ignoreErrs (every process)
	// A keyed group's circuit: calls go through Factory.Group(group,
	// cfg, WithMaxKeys(maxKeys), WithIdleTimeout(idle)).Breaker("k"+key);
	// name is then the circuit of key 0 (group+"/k0"), the one the healthy
	// phase calls and the invariants on a circuit's name follow.
	group   string
	maxKeys int
	idle    time.Duration
}

type actKind int

const (
	actCall actKind = iota
	actOpen
	actClose
	actIsolate
	actRemove
	actCloseFactory
	actKill
	actStoreFault
	actWatchFault
	actOpenFor // an operator or a server's hint (Retry-After): OpenFor(a.dur)
)

func (k actKind) String() string {
	return [...]string{"call", "open", "close", "isolate", "remove", "close factory", "kill", "store fault", "watch fault", "open for"}[k]
}

type outKind int

const (
	outSuccess outKind = iota
	outFailure
	outExcluded
	outCanceled
	outPanic
	outIgnored // errIgnored: ignored where the circuit has the Ignore matcher, a failure elsewhere
)

type ctxKind int

const (
	ctxNormal ctxKind = iota
	ctxCancelledBefore
	ctxExpiredBefore
	ctxCancelDuring
	ctxDeadlineDuring
	ctxCancelAfter
)

type doneKind int

const (
	doneOnce doneKind = iota
	doneTwice
	doneNever
)

type watchFault int

const (
	wDrop watchFault = iota
	wDelay
	wDup
	wReplay
	wForge
)

func (f watchFault) String() string {
	return [...]string{"lost", "delayed", "duplicated", "replayed from an old snapshot", "forged"}[f]
}

type action struct {
	at   time.Duration
	kind actKind
	p    int // process index; -1: every process (faults)
	c    int // circuit index

	// calls
	dur      time.Duration
	out      outKind
	ctxMode  ctxKind
	frac     float64 // where in the call the context ends
	key      int     // a group circuit's key
	doneMode doneKind

	// faults, kill (until: restart)
	until  time.Duration
	fault  faultMode
	wfault watchFault
	prob   float64
}

func (a action) doneNote() string {
	var s string
	switch a.ctxMode {
	case ctxCancelledBefore:
		s = "; its context was cancelled before the call"
	case ctxExpiredBefore:
		s = "; its context had expired before the call"
	case ctxCancelDuring:
		s = "; its caller cancels during the call"
	case ctxDeadlineDuring:
		s = "; its deadline passes during the call"
	case ctxCancelAfter:
		s = "; its context is cancelled after the call"
	}
	switch a.doneMode {
	case doneTwice:
		s += "; Done will be called twice"
	case doneNever:
		s += "; it never reports (hung)"
	}
	return s
}

func (o outKind) String() string {
	return [...]string{"in success", "in failure", "with an excluded error", "cancelled", "in a panic", "with an ignored error"}[o]
}

// result is the error the call returns: its drawn outcome, or its
// context's error once the context is done.
func (a action) result(ctx context.Context) error {
	if err := ctx.Err(); err != nil && a.ctxMode != ctxCancelAfter {
		return err
	}
	switch a.out {
	case outFailure:
		return errBackend
	case outExcluded:
		return fmt.Errorf("lookup: %w", errNotFound)
	case outCanceled:
		return context.Canceled
	case outPanic:
		return purgatory.ErrPanicked
	case outIgnored:
		return fmt.Errorf("throttled: %w", errIgnored)
	}
	return nil
}

func pick[T any](r *rand.Rand, xs ...T) T { return xs[r.IntN(len(xs))] }

func durIn(r *rand.Rand, lo, hi time.Duration) time.Duration {
	return lo + time.Duration(r.Int64N(int64(hi-lo)+1))
}

// drawConfig draws one circuit's settings.
func drawConfig(r *rand.Rand) purgatory.Config {
	cfg := purgatory.Config{
		TTL:    pick(r, 200*time.Millisecond, 500*time.Millisecond, time.Second, 2*time.Second, 5*time.Second),
		Trials: 1 + r.IntN(3),
	}
	if r.IntN(3) > 0 {
		cfg.Threshold = 1 + r.IntN(5)
	}
	if cfg.Threshold == 0 || r.IntN(3) == 0 {
		cfg.FailureRate = pick(r, 0.3, 0.5, 0.8, 1.0)
		cfg.Window = pick(r, 2*time.Second, 5*time.Second, 10*time.Second, 30*time.Second)
		cfg.MinCalls = 2 + r.IntN(8)
	}
	if r.IntN(4) == 0 {
		cfg.SlowCall = pick(r, 300*time.Millisecond, time.Second, 2*time.Second)
	}
	if r.IntN(3) == 0 {
		cfg.MaxTTL = cfg.TTL * time.Duration(2+r.IntN(6))
	}
	return cfg
}

// variantOf draws other settings for a rolling deploy: a rate added or
// dropped, other numbers.
func variantOf(r *rand.Rand, cfg purgatory.Config) purgatory.Config {
	v := cfg
	switch r.IntN(3) {
	case 0: // the deploy adds or drops the rate policy
		if v.FailureRate > 0 {
			v.FailureRate, v.Window, v.MinCalls = 0, 0, 0
			if v.Threshold == 0 {
				v.Threshold = 1 + r.IntN(5)
			}
		} else {
			v.FailureRate, v.Window, v.MinCalls = 0.5, 5*time.Second, 2+r.IntN(8)
		}
	case 1:
		v.Trials = 1 + r.IntN(3)
		v.TTL = pick(r, 200*time.Millisecond, time.Second, 3*time.Second)
	default:
		v = drawConfig(r)
	}
	return v
}

// newHistory draws the history of seed.
func newHistory(seed int64) *history {
	r := rand.New(rand.NewPCG(uint64(seed), 0x5eed))
	h := &history{seed: seed, nproc: 2 + r.IntN(4), T: durIn(r, 20*time.Second, 90*time.Second)}
	// Offsets within ±45 % of the bound (so ±450 ms for 1 s: two clocks,
	// drift included, stay within it), or ±55 % in every eighth seed
	// (beyond it). The draws are the same either way, so a seed keeps its
	// history but for the offsets.
	h.beyond = seed%8 == 0
	scale := 0.9
	if h.beyond {
		scale = 1.1
	}
	for range h.nproc {
		off := time.Duration(float64(time.Duration(r.IntN(1000)-500)*time.Millisecond) * scale * float64(skewBound) / float64(time.Second))
		if r.IntN(3) == 0 {
			off = 0
		}
		h.offsets = append(h.offsets, off)
		h.drifts = append(h.drifts, float64(r.IntN(21)-10)/100000) // ±100 ppm
		h.skew = max(h.skew, off, -off)
	}
	ncirc := 1 + r.IntN(3)
	for i := range ncirc {
		cs := circuitSpec{name: fmt.Sprintf("c%d", i+1), cfg: drawConfig(r)}
		cs.variant = cs.cfg
		if r.IntN(3) == 0 {
			cs.variant = variantOf(r, cs.cfg)
			cs.variantMask = uint(1+r.IntN(1<<h.nproc-1)) &^ 1 // p1 keeps the old settings
			if cs.variantMask == 0 {
				cs.variantMask = 2
			}
		}
		// The healthy phase: one lone slow caller, or several.
		if r.IntN(2) == 0 {
			cs.callers = 1 << r.IntN(h.nproc)
		} else {
			cs.callers = uint(1 + r.IntN(1<<h.nproc-1))
		}
		ttl := max(cs.cfg.TTL, cs.variant.TTL)
		cs.interval = pick(r, ttl/5, ttl/2, ttl+ttl/2, 2*ttl)
		h.circuits = append(h.circuits, cs)
	}

	// Backend health: bad periods per circuit.
	type period struct{ from, to time.Duration }
	bad := make([][]period, ncirc)
	for c := range ncirc {
		for range r.IntN(4) {
			from := durIn(r, 0, h.T)
			bad[c] = append(bad[c], period{from, from + durIn(r, time.Second, 20*time.Second)})
		}
	}
	failRate := func(c int, at time.Duration) float64 {
		for _, p := range bad[c] {
			if at >= p.from && at < p.to {
				return 0.9
			}
		}
		return 0.05
	}

	// Traffic.
	ncalls := 40 + r.IntN(260)
	for range ncalls {
		c := r.IntN(ncirc)
		a := action{kind: actCall, at: durIn(r, 0, h.T), p: r.IntN(h.nproc), c: c}
		a.dur = pick(r, time.Millisecond, 5*time.Millisecond, 20*time.Millisecond, 100*time.Millisecond, 400*time.Millisecond)
		if r.IntN(10) == 0 {
			a.dur = durIn(r, 500*time.Millisecond, 4*time.Second) // slow
		}
		if r.Float64() < failRate(c, a.at) {
			a.out = outFailure
			if r.IntN(20) == 0 {
				a.out = outPanic
			}
		} else if r.IntN(15) == 0 {
			a.out = pick(r, outExcluded, outCanceled)
		}
		switch x := r.IntN(40); {
		case x < 2:
			a.ctxMode = ctxCancelledBefore
		case x < 3:
			a.ctxMode = ctxExpiredBefore
		case x < 5:
			a.ctxMode = ctxCancelDuring
		case x < 7:
			a.ctxMode = ctxDeadlineDuring
		case x < 8:
			a.ctxMode = ctxCancelAfter
		}
		a.frac = r.Float64()
		switch x := r.IntN(60); {
		case x < 2:
			a.doneMode = doneTwice
		case x < 3:
			a.doneMode = doneNever
		}
		h.actions = append(h.actions, a)
	}
	// Clusters of calls: a caller retrying in a loop while the circuit
	// moves on, the histories where trials meet.
	for range r.IntN(4) {
		c, p := r.IntN(ncirc), r.IntN(h.nproc)
		at := durIn(r, 0, h.T)
		step := pick(r, 10*time.Millisecond, 100*time.Millisecond, 700*time.Millisecond)
		out := pick(r, outSuccess, outFailure)
		for range 5 + r.IntN(20) {
			at += step
			if at >= h.T {
				break
			}
			h.actions = append(h.actions, action{kind: actCall, at: at, p: p, c: c, dur: pick(r, time.Millisecond, 50*time.Millisecond), out: out,
				ctxMode: pick(r, ctxNormal, ctxNormal, ctxNormal, ctxCancelledBefore), frac: 0.5})
		}
	}
	// Operators.
	for range r.IntN(4) {
		h.actions = append(h.actions, action{kind: pick(r, actOpen, actClose, actIsolate), at: durIn(r, 0, h.T), p: r.IntN(h.nproc), c: r.IntN(ncirc)})
	}
	// Per-key life: Remove and re-creation.
	for range r.IntN(3) {
		h.actions = append(h.actions, action{kind: actRemove, at: durIn(r, 0, h.T), p: r.IntN(h.nproc), c: r.IntN(ncirc)})
	}
	if r.IntN(6) == 0 {
		h.actions = append(h.actions, action{kind: actCloseFactory, at: durIn(r, 0, h.T), p: r.IntN(h.nproc)})
	}
	if r.IntN(5) == 0 {
		at := durIn(r, 0, h.T)
		h.actions = append(h.actions, action{kind: actKill, at: at, p: r.IntN(h.nproc), until: at + durIn(r, time.Second, 10*time.Second)})
	}
	// Store faults.
	for range r.IntN(4) {
		at := durIn(r, 0, h.T)
		a := action{kind: actStoreFault, at: at, until: at + durIn(r, 100*time.Millisecond, 8*time.Second), p: -1,
			fault: pick(r, fFail, fHang, fApplyFail, fApplyHang), prob: pick(r, 0.3, 1.0)}
		if r.IntN(3) > 0 {
			a.p = r.IntN(h.nproc)
		}
		h.actions = append(h.actions, a)
	}
	if r.IntN(8) == 0 { // the store frozen
		at := durIn(r, 0, h.T)
		h.actions = append(h.actions, action{kind: actStoreFault, at: at, until: at + durIn(r, time.Second, 5*time.Second), p: -1, fault: fHang, prob: 1})
	}
	// Message faults.
	for range r.IntN(4) {
		at := durIn(r, 0, h.T)
		a := action{kind: actWatchFault, at: at, until: at + durIn(r, 500*time.Millisecond, 15*time.Second), p: -1,
			wfault: pick(r, wDrop, wDelay, wDup, wReplay, wReplay, wForge), prob: pick(r, 0.2, 0.5, 1.0)}
		if r.IntN(2) == 0 {
			a.p = r.IntN(h.nproc)
		}
		h.actions = append(h.actions, a)
	}
	h.burst = r.IntN(3) == 0
	// Drawn last, so that the draws above (and the seeds the regression
	// tests name) keep their histories.
	//
	// Ignored errors: circuits with the Ignore matcher, and calls ending in
	// errIgnored on any circuit (a failure where the matcher is missing).
	for c := range h.circuits {
		h.circuits[c].ignore = r.IntN(2) == 0
	}
	for i := range h.actions {
		if h.actions[i].kind == actCall && r.IntN(10) == 0 {
			h.actions[i].out = outIgnored
		}
	}
	// OpenFor: a server's hint or an operator, d sometimes beyond the cap
	// max(TTL, MaxTTL) (an hour, or a few times the cap), sometimes <= 0.
	for range r.IntN(4) {
		c := r.IntN(ncirc)
		lim := max(h.circuits[c].cfg.TTL, h.circuits[c].cfg.MaxTTL)
		d := pick(r, 0, -time.Second, lim/3, lim, lim+time.Millisecond, 3*lim, time.Hour)
		h.actions = append(h.actions, action{kind: actOpenFor, at: durIn(r, 0, h.T), p: r.IntN(h.nproc), c: c, dur: d})
	}
	// A keyed group (every third seed): a few keys, few places, a short
	// idle timeout, so that circuits are evicted (idle, or the least used
	// one past MaxKeys) and new keys share the overflow circuit.
	// Opt-in (-sim.groups): which circuit a full group evicts follows
	// sync.Map's order, which differs from run to run, so such a seed does
	// not replay event for event (see the closing note of branch sim-ops).
	if *flagGroups && r.IntN(3) == 0 {
		cs := circuitSpec{group: "g1", name: "g1/k0", cfg: drawConfig(r), maxKeys: 1 + r.IntN(3),
			idle: pick(r, 500*time.Millisecond, 2*time.Second, 8*time.Second), callers: 1 << r.IntN(h.nproc)}
		cs.variant = cs.cfg
		cs.ignore = r.IntN(2) == 0
		cs.interval = pick(r, cs.cfg.TTL/2, cs.cfg.TTL+cs.cfg.TTL/2)
		c := len(h.circuits)
		h.circuits = append(h.circuits, cs)
		nkeys := 2 + r.IntN(5)
		fail := make([]float64, nkeys)
		for k := range fail {
			fail[k] = pick(r, 0.05, 0.3, 0.9)
		}
		for range 30 + r.IntN(120) {
			k := r.IntN(nkeys)
			a := action{kind: actCall, at: durIn(r, 0, h.T), p: r.IntN(h.nproc), c: c, key: k,
				dur: pick(r, time.Millisecond, 20*time.Millisecond, 300*time.Millisecond), frac: 0.5}
			switch x := r.Float64(); {
			case x < fail[k]:
				a.out = outFailure
			case x < fail[k]+0.1:
				a.out = outIgnored
			}
			h.actions = append(h.actions, a)
		}
		for range r.IntN(3) {
			h.actions = append(h.actions, action{kind: pick(r, actOpenFor, actRemove), at: durIn(r, 0, h.T), p: r.IntN(h.nproc), c: c,
				dur: pick(r, cs.cfg.TTL, time.Hour)})
		}
		// Calls in flight across an eviction (finding 108): some hang (a
		// trial's lease holds its circuit until it runs out), some report
		// twice, some outlast the idle timeout. Drawn last, so that the
		// group's histories drawn before keep theirs.
		for i := range h.actions {
			if a := &h.actions[i]; a.kind == actCall && a.c == c {
				switch r.IntN(16) {
				case 0:
					a.doneMode = doneNever
				case 1:
					a.doneMode = doneTwice
				case 2:
					a.dur = 2 * cs.idle
				}
			}
		}
	}
	return h
}

func cfgText(c purgatory.Config) string {
	s := fmt.Sprintf("threshold=%d ttl=%s trials=%d", c.Threshold, c.TTL, c.Trials)
	if c.FailureRate > 0 {
		s += fmt.Sprintf(" rate=%g%% window=%s min=%d", c.FailureRate*100, c.Window, c.MinCalls)
	}
	if c.SlowCall > 0 {
		s += fmt.Sprintf(" slow=%s", c.SlowCall)
	}
	if c.MaxTTL > 0 {
		s += fmt.Sprintf(" maxttl=%s", c.MaxTTL)
	}
	return s
}
