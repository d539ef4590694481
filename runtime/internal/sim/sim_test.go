package sim

// The invariants checked in every history (issue 17):
//
//  1. Liveness: after faults heal, under a healthy backend, no caller is
//     rejected for longer than the circuit's longest open period + one
//     lease + the trials it needs + the store back-off (+ clock skew and
//     the skew bound), and every circuit ends closed in the store.
//  2. Trials: never more than Trials unreported trial calls per half-open
//     generation fleet-wide (processes in degraded mode aside), a
//     half-open period whose claimed trials all succeeded never re-opens,
//     and, while the clocks stay within the skew bound
//     (purgatory.DefaultClockSkew), no lease ends before its TTL. Every
//     eighth seed draws clocks up to 10 % beyond the bound: those
//     histories are held to liveness, not to the lease's length.
//  3. Exact counts: the store merges into a closed generation's window only
//     counts of calls admitted in that generation and reported (never
//     doubled, never carried over from another generation); concurrent
//     failing calls on a rate=100% circuit all reach the window (bursts).
//  4. Agreement: after healing, every live process sees the store's state.
//  5. Authority: forged and replayed messages are part of the faults; what
//     they break shows as a liveness or agreement failure.
//  6. Safety: no panic anywhere (calls, timers, watches, listeners), no
//     timer left once every factory is closed and the circuits' periods
//     are over.
//  7. Operators win: an operator's isolation is only ended by an operator
//     (checked as part of liveness: the heal closes isolated circuits).
//  8. OpenFor never opens a circuit beyond its cap max(TTL, MaxTTL), in
//     the process or in the store (+ the clocks' disagreement); liveness
//     bounds what follows with the same longest open period.
//  9. Ignored errors (Config.Ignore) are neither successes nor failures:
//     the ledger of item 3 does not count them, the store hears no
//     Failure or Success of them, and they leave the consecutive
//     failures alone.
// 10. Groups (-sim.groups): a group never holds more than MaxKeys
//     circuits, and idle circuits never hold its places for ever: after
//     faults heal, key 0, called all along while the other keys are not,
//     stops sharing the overflow circuit within the liveness bound plus
//     two idle timeouts (finding 108).
//
// Known defects: today's main violates items 1, 2, 3, 7 and 8 of issue 16
// (and 4 with forged messages). Until their fixes are merged, violations
// attributed to those items are tolerated by default and counted; set
// PURGATORY_SIM_KNOWN_DEFECTS=0 or pass -sim.strict to fail on them. After
// the merge, set knownDefectsDefault to false.

import (
	"flag"
	"fmt"
	"os"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// knownDefectsDefault tolerates the violations of issue 16's items in
// knownItems. The lead sets it to false once the fixes are on main.
const knownDefectsDefault = true

// knownItems are the defects main is known to violate (the simulator's own
// findings, numbered from 101), each with a skipped regression test.
var knownItems = map[int]bool{}

var (
	flagSeeds    = flag.Int("sim.seeds", 0, "how many seeds TestSimulation runs (default 500; env PURGATORY_SIM_SEEDS)")
	flagFirst    = flag.Int64("sim.first", 1, "the first seed TestSimulation runs")
	flagSeed     = flag.Int64("sim.seed", 0, "replay this one seed, printing its story")
	flagTolerate = flag.String("sim.tolerate", "", "comma-separated items tolerated instead of knownItems (e.g. 3,4,101)")
	flagGroups   = flag.Bool("sim.groups", false, "draw a keyed group circuit in every third seed (its evictions do not replay: off by default)")
	flagStrict   = flag.Bool("sim.strict", false, "fail on the known defects of issue 16 too (env PURGATORY_SIM_KNOWN_DEFECTS=0)")
)

func seeds() int {
	if *flagSeeds > 0 {
		return *flagSeeds
	}
	if n, err := strconv.Atoi(os.Getenv("PURGATORY_SIM_SEEDS")); err == nil && n > 0 {
		return n
	}
	return 500
}

func strict() bool {
	return *flagStrict || !knownDefectsDefault || os.Getenv("PURGATORY_SIM_KNOWN_DEFECTS") == "0"
}

// runSeed runs the history of seed with the actions keep marks.
func runSeed(h *history, keep []bool, tell bool) *world {
	if keep == nil {
		keep = make([]bool, len(h.actions))
		for i := range keep {
			keep[i] = true
		}
	}
	w := newWorld(h, keep, false)
	w.tell = tell
	w.run()
	return w
}

// tolerated reports whether violations of item are tolerated.
func tolerated(item int) bool {
	if *flagTolerate != "" {
		for _, f := range strings.Split(*flagTolerate, ",") {
			if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n == item && item != 0 {
				return true
			}
		}
		return false
	}
	return knownItems[item]
}

// failing returns the first violation that fails the run.
func failing(vs []violation, strict bool) (violation, bool) {
	for _, v := range vs {
		if strict && *flagTolerate == "" || !tolerated(v.item) {
			return v, true
		}
	}
	return violation{}, false
}

func TestSimulation(t *testing.T) {
	t.Parallel()
	st := strict()
	if *flagSeed != 0 {
		replay(t, *flagSeed, st)
		return
	}
	n, first := seeds(), *flagFirst
	start := time.Now()
	type known struct {
		count int
		first int64
	}
	var (
		mu     sync.Mutex
		found  = map[int]*known{}
		failed []int64
		next   atomic.Int64
		wg     sync.WaitGroup
	)
	next.Store(first)
	for range goruntime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				seed := next.Add(1) - 1
				if seed >= first+int64(n) {
					return
				}
				mu.Lock()
				stop := len(failed) > 0
				mu.Unlock()
				if stop {
					return
				}
				if os.Getenv("PURGATORY_SIM_TRACE") != "" {
					fmt.Fprintln(os.Stderr, "sim: seed", seed) // to find a seed that never ends
				}
				w := runSeed(newHistory(seed), nil, false)
				mu.Lock()
				if _, bad := failing(w.viol, st); bad {
					failed = append(failed, seed)
				}
				seen := map[int]bool{}
				for _, v := range w.viol {
					if v.item != 0 && !seen[v.item] {
						seen[v.item] = true
						k := found[v.item]
						if k == nil {
							k = &known{first: seed}
							found[v.item] = k
						}
						if k.first > seed {
							k.first = seed
						}
						k.count++
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(failed) > 0 {
		seed := slices.Min(failed)
		report(t, seed, st)
		return
	}
	if len(found) > 0 {
		var parts []string
		for _, item := range slices.Sorted(func(yield func(int) bool) {
			for k := range found {
				if !yield(k) {
					return
				}
			}
		}) {
			parts = append(parts, fmt.Sprintf("item %d in %d seeds, first at seed %d", item, found[item].count, found[item].first))
		}
		t.Logf("simulation: known defects of issue 16 seen (tolerated until fixed): %s", strings.Join(parts, "; "))
	}
	t.Logf("simulation: %d seeds passed", n)
	t.Logf("simulation: seeds %d..%d in %s", first, first+int64(n)-1, time.Since(start).Round(time.Millisecond))
}

// replay runs one seed and prints its story.
func replay(t *testing.T, seed int64, st bool) {
	h := newHistory(seed)
	w := runSeed(h, nil, true)
	t.Logf("seed %d:\n%s", seed, describeHistory(h))
	t.Logf("story:\n%s", strings.Join(w.story, "\n"))
	if v, bad := failing(w.viol, st); bad {
		report(t, seed, st)
		_ = v
		return
	}
	for _, v := range w.viol {
		t.Logf("tolerated known defect: %s", v)
	}
}

// report shrinks the failing history of seed and fails t with the command
// that replays it and the shrunk story.
func report(t *testing.T, seed int64, st bool) {
	t.Helper()
	h := newHistory(seed)
	w := runSeed(h, nil, false)
	v, bad := failing(w.viol, st)
	if !bad {
		t.Fatalf("seed %d failed once but not when run again: a nondeterministic history (a concurrent burst?): %v", seed, w.viol)
	}
	keep, sw := shrink(h, v, st)
	cmd := fmt.Sprintf("go test ./runtime/internal/sim -run 'TestSimulation$' -sim.seed=%d -v", seed)
	if st && knownDefectsDefault {
		cmd += " -sim.strict"
	}
	n := 0
	for _, k := range keep {
		if k {
			n++
		}
	}
	t.Fatalf("simulation: seed %d violates an invariant:\n  %s\nreplay: %s\n\nshrunk history (%d of %d actions kept):\n%s\nstory:\n%s",
		seed, v, cmd, n, len(keep), describeHistory(h), storyUpTo(sw.story, v, 220))
}

// shrink drops actions of h while the run still fails the same way.
func shrink(h *history, v violation, st bool) ([]bool, *world) {
	keep := make([]bool, len(h.actions))
	for i := range keep {
		keep[i] = true
	}
	same := func(k []bool) (*world, bool) {
		w := runSeed(h, k, false)
		for _, x := range w.viol {
			if x.kind == v.kind && x.item == v.item {
				return w, true
			}
		}
		return w, false
	}
	var best *world
	deadline := time.Now().Add(20 * time.Second)
	for chunk := len(keep) / 2; chunk >= 1 && time.Now().Before(deadline); chunk /= 2 {
		for i := 0; i < len(keep) && time.Now().Before(deadline); i += chunk {
			trial := slices.Clone(keep)
			changed := false
			for j := i; j < min(i+chunk, len(trial)); j++ {
				changed = changed || trial[j]
				trial[j] = false
			}
			if !changed {
				continue
			}
			if _, ok := same(trial); ok {
				keep = trial
			}
		}
	}
	best = runSeed(h, keep, true)
	return keep, best
}

func storyUpTo(lines []string, v violation, n int) string {
	end := len(lines)
	for i, l := range lines {
		tagged := strings.Contains(l, "(issue 16 item") || strings.Contains(l, "(finding ")
		if strings.Contains(l, "VIOLATION ["+v.kind+"]") && (v.item == 0) == !tagged {
			end = i + 1
			break
		}
	}
	lines = lines[:end]
	if len(lines) > n {
		head := lines[:20]
		tail := lines[len(lines)-(n-21):]
		return strings.Join(head, "\n") + fmt.Sprintf("\n   ... %d lines ...\n", len(lines)-len(head)-len(tail)) + strings.Join(tail, "\n")
	}
	return strings.Join(lines, "\n")
}

func describeHistory(h *history) string {
	var b strings.Builder
	for i := range h.nproc {
		fmt.Fprintf(&b, "  p%d: clock offset %s, drift %+.0f ppm\n", i+1, h.offsets[i], h.drifts[i]*1e6)
	}
	if h.beyond {
		fmt.Fprintf(&b, "  clocks may disagree by more than the skew bound %s (liveness only)\n", skewBound)
	}
	for _, c := range h.circuits {
		fmt.Fprintf(&b, "  %s: %s", c.name, cfgText(c.cfg))
		if c.variantMask != 0 {
			var ps []string
			for i := range h.nproc {
				if c.variantMask&(1<<i) != 0 {
					ps = append(ps, fmt.Sprintf("p%d", i+1))
				}
			}
			fmt.Fprintf(&b, "; %s register it with %s", strings.Join(ps, ","), cfgText(c.variant))
		}
		if c.group != "" {
			fmt.Fprintf(&b, "; a group's key 0 (max keys %d, idle timeout %s)", c.maxKeys, c.idle)
		}
		if c.ignore {
			fmt.Fprintf(&b, "; ignores %q", errIgnored)
		}
		fmt.Fprintf(&b, "; healthy phase: callers %b every %s\n", c.callers, c.interval)
	}
	fmt.Fprintf(&b, "  faults heal at %s", fmtDur(h.T))
	return b.String()
}

// TestSimulationReplays checks what replaying a seed relies on: the same
// seed tells the same story, event for event (histories without bursts,
// whose goroutines the Go scheduler orders).
func TestSimulationReplays(t *testing.T) {
	n := 0
	for seed := int64(1); n < 20; seed++ {
		h := newHistory(seed)
		if h.burst {
			continue
		}
		n++
		a, b := runSeed(h, nil, true), runSeed(newHistory(seed), nil, true)
		if len(a.story) != len(b.story) {
			t.Fatalf("seed %d told %d then %d lines", seed, len(a.story), len(b.story))
		}
		for i := range a.story {
			if a.story[i] != b.story[i] {
				t.Fatalf("seed %d: line %d differs:\n%s\n%s", seed, i, a.story[i], b.story[i])
			}
		}
	}
}
