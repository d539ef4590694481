package runtime_test

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	purgatory "github.com/purgatory-go/purgatory/runtime"
	"github.com/purgatory-go/purgatory/runtime/clocktest"
	"github.com/purgatory-go/purgatory/runtime/store"
)

// slowMemory is a memory store that is not store.Immediate: results go
// through the pusher.
type slowMemory struct{ store.Store }

type factoryKind struct {
	name string
	make func() *purgatory.Factory
}

func factoryKinds(clk *clocktest.Clock) []factoryKind {
	return []factoryKind{
		{"private", func() *purgatory.Factory { return purgatory.NewFactory(purgatory.WithClock(clk)) }},
		{"memory", func() *purgatory.Factory {
			return purgatory.NewFactory(purgatory.WithClock(clk), purgatory.WithStore(store.NewMemory()))
		}},
		{"closed", func() *purgatory.Factory {
			f := purgatory.NewFactory(purgatory.WithClock(clk), purgatory.WithStore(store.NewMemory()))
			f.Close()
			return f
		}},
	}
}

var configKinds = []purgatory.Config{
	{Threshold: 3, TTL: time.Second, Trials: 2},
	{FailureRate: 0.5, Window: time.Second, MinCalls: 2, TTL: time.Second},
	{Threshold: 3, TTL: time.Second, SlowCall: time.Millisecond},
}

// Garbage tokens handed to Done on never-tripped, tripped, half-open,
// isolated and removed circuits must not panic.
func TestForgedTokens(t *testing.T) {
	clk := clocktest.New(time.Unix(1000, 0))
	rng := rand.New(rand.NewPCG(1, 2))
	for _, rf := range factoryKinds(clk) {
		for ci, cfg := range configKinds {
			f := rf.make()
			f.CountCalls()
			b := f.Breaker("c", cfg)
			try := func(stage string) {
				defer func() {
					if p := recover(); p != nil {
						t.Fatalf("%s cfg %d %s: Done with a forged token panicked: %v", rf.name, ci, stage, p)
					}
				}()
				for range 2000 {
					tok := purgatory.Token(rng.Uint64())
					if rng.IntN(2) == 0 {
						tok = purgatory.Token(uint64(rng.IntN(256)) | uint64(rng.IntN(8))<<8 | uint64(rng.IntN(4))<<40)
					}
					var err error
					if rng.IntN(2) == 0 {
						err = errBoom
					}
					b.Done(context.Background(), tok, err)
				}
			}
			try("fresh")
			b.Isolate()
			try("isolated")
			b.Close()
			b.Open()
			try("open")
			clk.Advance(2 * time.Second)
			if tok, err := b.Allow(context.Background()); err == nil {
				try("half-open")
				b.Done(context.Background(), tok, nil)
			}
			b.OpenFor(time.Hour)
			try("openfor")
			f.Remove("c")
			try("removed")
			b.Isolate()
			b.OpenFor(time.Minute)
			b.Close()
			try("removed closed")
		}
	}
}

// Force on a never-tripped circuit, on every kind of factory, then calls.
func TestForceNeverTripped(t *testing.T) {
	clk := clocktest.New(time.Unix(1000, 0))
	for _, rf := range factoryKinds(clk) {
		for ci, cfg := range configKinds {
			for op := range 4 {
				f := rf.make()
				b := f.Breaker("c", cfg)
				if op == 3 {
					f.Remove("c")
				}
				switch op {
				case 0, 3:
					b.Isolate()
				case 1:
					b.Open()
				case 2:
					b.OpenFor(time.Minute)
				}
				if _, err := b.Allow(context.Background()); err == nil {
					t.Fatalf("%s cfg %d op %d: allowed", rf.name, ci, op)
				}
				_ = b.Status()
			}
		}
	}
}

// Many goroutines call a circuit while it trips for the first time, goes
// half-open and is isolated: -race checks the reads of rare without mu.
func TestFirstTripRace(t *testing.T) {
	for _, mk := range []func() *purgatory.Factory{
		func() *purgatory.Factory { return purgatory.NewFactory(purgatory.WithTTL(time.Millisecond)) },
		func() *purgatory.Factory {
			return purgatory.NewFactory(purgatory.WithTTL(time.Millisecond), purgatory.WithStore(store.NewMemory()))
		},
		func() *purgatory.Factory {
			return purgatory.NewFactory(purgatory.WithTTL(time.Millisecond), purgatory.WithStore(slowMemory{store.NewMemory()}))
		},
	} {
		for i := range 50 {
			f := mk()
			b := f.Breaker("c"+string(rune('a'+i%26)), purgatory.Config{Threshold: 1, Trials: 1})
			var wg sync.WaitGroup
			start := make(chan struct{})
			for g := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					for range 200 {
						tok, err := b.Allow(context.Background())
						if err == nil {
							var e error
							if g == 0 {
								e = errBoom
							}
							b.Done(context.Background(), tok, e)
						}
					}
				}()
			}
			close(start)
			b.Done(context.Background(), 0, errBoom)
			wg.Wait()
			f.Close()
		}
	}
}
