// Package sim is the fleet simulator of purgatory's runtime. It is
// test-only: everything is in its _test.go files, run by
//
//	go test ./runtime/internal/sim                 # 500 seeds
//	go test ./runtime/internal/sim -sim.seeds=100000
//	go test ./runtime/internal/sim -run TestSimulation -sim.seed=N   # replay one
//	go test ./runtime/internal/sim -run 'TestSimulation$' -sim.groups  # keyed groups too
//
// A seed draws a history: 2–5 virtual processes (each a Factory with its
// own clock, offset and drift) sharing one store.Memory behind a fault
// layer, circuits with settings drawn from the seed (two processes may
// register one name with different settings), traffic with outcomes,
// durations, slow calls and contexts cancelled before, during and after
// the call, Done reported twice or never, errors a circuit's Config.Ignore
// matches (and the same errors where no matcher is set), operators and
// servers' hints (OpenFor, sometimes beyond its cap), Remove, Factory.Close,
// killed processes, store operations that fail, hang until their timeout
// or apply but report failure, a frozen store, and watch messages delayed,
// lost, duplicated, reordered, replayed or forged. Everything runs on one
// goroutine on simulated time (one event queue), so an hour of fleet
// history takes milliseconds and a seed replays the same history; the
// concurrent bursts (real goroutines racing the flush of a rate window)
// are the one part the Go scheduler orders, and their invariant holds in
// every order.
//
// See sim_test.go for the invariants, and the README's testing section.
package sim
