package bench

import (
	"context"
	"testing"
)

// mixedKey returns the key of call i in the Mixed scenario: every tenth
// call fails, the others succeed, so failures are never consecutive.
func mixedKey(i int) int {
	if i%10 == 9 {
		return -1
	}
	return i
}

// alternatingKey returns the key of call i in the Alternating scenario:
// every other call fails, a failure first.
func alternatingKey(i int) int {
	if i%2 == 0 {
		return -1
	}
	return i
}

// BenchmarkClosedSuccess measures a successful call through a closed
// circuit.
func BenchmarkClosedSuccess(b *testing.B) { benchmarkSuccess(b, newCircuit) }

// BenchmarkClosedSuccessParallel measures successful calls through one
// closed circuit from GOMAXPROCS goroutines at once.
func BenchmarkClosedSuccessParallel(b *testing.B) { benchmarkSuccessParallel(b, newCircuit) }

// newCircuit returns a contender's constructor of a threshold circuit.
func newCircuit(c Contender) func(Service) Service { return c.New }

// newRateCircuit returns a contender's constructor of a failure-rate
// circuit, nil if it has none.
func newRateCircuit(c Contender) func(Service) Service { return c.Rate }

// benchmarkSuccess measures successful calls through a closed circuit of
// every contender that newService gives a constructor for.
func benchmarkSuccess(b *testing.B, newService func(Contender) func(Service) Service) {
	for _, c := range Contenders {
		mk := newService(c)
		if mk == nil {
			continue
		}
		b.Run(c.Name, func(b *testing.B) {
			s := mk(Backend{})
			ctx := context.Background()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, err := s.Get(ctx, i); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchmarkSuccessParallel is benchmarkSuccess from GOMAXPROCS goroutines
// at once, on one circuit.
func benchmarkSuccessParallel(b *testing.B, newService func(Contender) func(Service) Service) {
	for _, c := range Contenders {
		mk := newService(c)
		if mk == nil {
			continue
		}
		b.Run(c.Name, func(b *testing.B) {
			s := mk(Backend{})
			ctx := context.Background()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for i := 0; pb.Next(); i++ {
					if _, err := s.Get(ctx, i); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkOpenReject measures a call rejected by an open circuit.
func BenchmarkOpenReject(b *testing.B) {
	for _, c := range Contenders {
		if c.Open == nil {
			continue // the direct call has no circuit to open
		}
		b.Run(c.Name, func(b *testing.B) {
			s := c.New(Backend{})
			ctx := context.Background()
			if err := trip(ctx, s, c); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, err := s.Get(ctx, i); err == nil {
					b.Fatal("open circuit let a call through")
				}
			}
		})
	}
}

// BenchmarkMixed measures a closed circuit under 10% failures that never
// come Threshold in a row: one failing call after every nine successes.
func BenchmarkMixed(b *testing.B) { benchmarkPattern(b, ScenarioMixed, mixedKey) }

// BenchmarkAlternating measures the failure path: every other call fails
// (failure, success, failure, ...), so the breaker counts a failure and
// resets on the next success, and the circuit never opens.
func BenchmarkAlternating(b *testing.B) { benchmarkPattern(b, ScenarioAlternating, alternatingKey) }

// benchmarkPattern runs the keys of a failure pattern that must never open
// the circuit (a negative key fails) through every contender that takes
// part in scenario.
func benchmarkPattern(b *testing.B, scenario string, key func(int) int) {
	for _, c := range Contenders {
		if c.Skips(scenario) {
			continue
		}
		b.Run(c.Name, func(b *testing.B) {
			s := c.New(Backend{})
			ctx := context.Background()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				k := key(i)
				if _, err := s.Get(ctx, k); (err != nil) != (k < 0) {
					b.Fatalf("call %d: err = %v", i, err)
				}
			}
			if c.Open != nil && c.Open(s) {
				b.Fatalf("circuit opened under %s", scenario)
			}
		})
	}
}

// BenchmarkHalfOpenReject measures a call rejected by a half-open circuit
// whose single trial slot is taken by a call that has not returned.
func BenchmarkHalfOpenReject(b *testing.B) {
	for _, c := range Contenders {
		if c.HalfOpen == nil || c.Skips(ScenarioHalfOpenReject) {
			continue
		}
		b.Run(c.Name, func(b *testing.B) {
			g := newGate()
			s, err := c.HalfOpen(g)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			trial, err := g.hold(ctx, s)
			if err != nil {
				b.Fatal(err)
			}
			before := g.calls.Load()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, err := s.Get(ctx, i); err == nil {
					b.Fatal("half-open circuit with its trial taken let a call through")
				}
			}
			b.StopTimer()
			// Checked once, out of the loop, as OpenReject does: an
			// errors.Is per call would cost more than the rejection.
			if n := g.calls.Load() - before; n != 0 {
				b.Fatalf("%d rejected calls reached the backend", n)
			}
			if err := trial(); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkRateWindow measures a successful call through a closed
// failure-rate circuit.
func BenchmarkRateWindow(b *testing.B) { benchmarkSuccess(b, newRateCircuit) }

// BenchmarkRateWindowParallel measures successful calls through one closed
// failure-rate circuit from GOMAXPROCS goroutines at once.
func BenchmarkRateWindowParallel(b *testing.B) { benchmarkSuccessParallel(b, newRateCircuit) }
