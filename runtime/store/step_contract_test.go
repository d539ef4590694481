package store_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/purgatory-go/purgatory/runtime/store"
)

// Step leaves *s (and the window) as it was whenever it reports no change,
// for every kind, on random snapshots.
func TestStepLeavesUnchangedAlone(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	base := time.Unix(5000, 0)
	for i := range 200000 {
		set := store.Settings{TTL: time.Duration(1+rng.IntN(3)) * time.Second, Trials: rng.IntN(3), Threshold: rng.IntN(4),
			FailureRate: []float64{0, 0.5, 1}[rng.IntN(3)], Window: time.Duration(rng.IntN(3)) * time.Second, MinCalls: rng.IntN(3), MaxTTL: time.Duration(rng.IntN(3)) * time.Second}
		s := store.Snapshot{State: store.State(rng.IntN(5)), Gen: uint64(rng.IntN(3)), Seq: uint64(rng.IntN(5)),
			Failures: rng.IntN(4) - 1, Claimed: rng.IntN(4) - 1, Succeeded: rng.IntN(3), Level: rng.IntN(3),
			Until: base.Add(time.Duration(rng.IntN(5)-2) * time.Second), Calls: rng.IntN(3), Failed: rng.IntN(3)}
		if rng.IntN(4) == 0 {
			s.Until = time.Time{}
		}
		c := store.Change{Kind: store.Kind(rng.IntN(11)), N: rng.IntN(4) - 1, Failed: rng.IntN(3) - 1, To: store.State(rng.IntN(5)),
			Base: uint64(rng.IntN(5)), Want: store.Snapshot{State: store.State(rng.IntN(5)), Until: base}, Skew: time.Duration(rng.IntN(3)-1) * time.Second}
		var w store.Window
		w.Gen = uint64(rng.IntN(3))
		w0 := w
		got := s
		now := base.Add(time.Duration(rng.IntN(5)-2) * time.Second)
		changed, granted := got.Step(set, &w, uint64(rng.IntN(3)), now, &c)
		if !changed && (got != s || w != w0) {
			t.Fatalf("case %d: kind %v reported no change but changed\n s  %+v\n to %+v\n w %+v -> %+v", i, c.Kind, s, got, w0, w)
		}
		if granted && !changed {
			t.Fatalf("case %d: granted without change", i)
		}
	}
}
