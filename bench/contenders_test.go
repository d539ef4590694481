package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	purgatory "github.com/purgatory-go/purgatory/runtime"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// counting is a Backend that counts the calls that reach it.
type counting struct {
	calls atomic.Int64
}

func (c *counting) Get(ctx context.Context, key int) (int, error) {
	c.calls.Add(1)
	return Backend{}.Get(ctx, key)
}

// trip opens the circuit of s with failing calls. Most contenders open on
// the Threshold-th consecutive failure; hystrix-go updates its metrics
// asynchronously and opens on a later call, so trip keeps failing calls
// until the circuit reports open, for a bounded time.
func trip(ctx context.Context, s Service, c Contender) error {
	deadline := time.Now().Add(5 * time.Second)
	for n := 1; ; n++ {
		if _, err := s.Get(ctx, -1); err == nil {
			return fmt.Errorf("%s: failing call %d returned no error", c.Name, n)
		}
		if n >= Threshold && c.Open(s) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: still closed after %d failing calls", c.Name, n)
		}
		if n >= Threshold {
			time.Sleep(time.Millisecond)
		}
	}
}

// TestContendersAlike checks that every contender is configured as the
// benchmarks claim: closed after Threshold-1 failures, open after Threshold
// (hystrix-go: soon after), rejecting without calling the backend while
// open, and closed under the Mixed pattern unless marked NoMixed.
func TestContendersAlike(t *testing.T) {
	ctx := context.Background()
	for _, c := range Contenders {
		if c.Open == nil {
			continue
		}
		t.Run(c.Name, func(t *testing.T) {
			backend := &counting{}
			s := c.New(backend)
			for i := 0; i < Threshold-1; i++ {
				_, err := s.Get(ctx, -1)
				require.ErrorIs(t, err, ErrBackend)
			}
			assert.False(t, c.Open(s), "open after %d failures", Threshold-1)

			require.NoError(t, trip(ctx, s, c))
			before := backend.calls.Load()
			for i := 0; i < 10; i++ {
				_, err := s.Get(ctx, i)
				require.Error(t, err)
				assert.False(t, errors.Is(err, ErrBackend), "rejection is not the backend's error")
			}
			assert.Equal(t, before, backend.calls.Load(), "open circuit called the backend")
		})
	}
}

// patterns are the closed-circuit call patterns, by scenario: the key of
// call i.
var patterns = []struct {
	scenario string
	key      func(i int) int
}{
	{ScenarioMixed, mixedKey},
	{ScenarioAlternating, alternatingKey},
}

// TestPatternsStayClosed checks that the Mixed and Alternating scenarios
// never open a circuit of the contenders they run.
func TestPatternsStayClosed(t *testing.T) {
	ctx := context.Background()
	for _, p := range patterns {
		for _, c := range Contenders {
			if c.Open == nil || c.Skips(p.scenario) {
				continue
			}
			t.Run(p.scenario+"/"+c.Name, func(t *testing.T) {
				s := c.New(Backend{})
				for i := 0; i < 1000; i++ {
					key := p.key(i)
					_, err := s.Get(ctx, key)
					if key < 0 {
						require.ErrorIs(t, err, ErrBackend, "call %d", i)
					} else {
						require.NoError(t, err, "call %d", i)
					}
				}
				assert.False(t, c.Open(s))
			})
		}
	}
}

// TestSkippedPatternsOpen checks the reason a contender is left out of
// Mixed or Alternating: the pattern opens its circuit (hystrix-go: soon
// after its metrics catch up).
func TestSkippedPatternsOpen(t *testing.T) {
	ctx := context.Background()
	for _, p := range patterns {
		for _, c := range Contenders {
			if c.Open == nil || !c.Skips(p.scenario) {
				continue
			}
			t.Run(p.scenario+"/"+c.Name, func(t *testing.T) {
				s := c.New(Backend{})
				for i := 0; i < 10*Threshold; i++ {
					_, _ = s.Get(ctx, p.key(i))
				}
				assert.Eventually(t, func() bool { return c.Open(s) }, 2*time.Second, time.Millisecond)
			})
		}
	}
}

// TestScenariosAccounted checks that every contender with a circuit either
// runs HalfOpenReject and RateWindow or says why not.
func TestScenariosAccounted(t *testing.T) {
	for _, c := range Contenders {
		t.Run(c.Name, func(t *testing.T) {
			if c.Open != nil {
				require.NotNil(t, c.HalfOpen, "every circuit has a half-open constructor, to run or to show the skip reason")
				if !c.Skips(ScenarioHalfOpenReject) {
					assert.NotNil(t, c.HalfOpenErr)
				}
			}
			assert.True(t, (c.Rate != nil) != c.Skips(ScenarioRateWindow), "Rate set, or a reason to skip RateWindow")
		})
	}
}

// trialKey is the key of the half-open trial call, which a gate holds.
const trialKey = 1 << 40

// gate is a Backend that counts the calls reaching it and holds the call
// with trialKey until released.
type gate struct {
	calls   atomic.Int64
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func newGate() *gate {
	return &gate{entered: make(chan struct{}), release: make(chan struct{})}
}

func (g *gate) Get(ctx context.Context, key int) (int, error) {
	g.calls.Add(1)
	if key == trialKey {
		g.once.Do(func() { close(g.entered) })
		<-g.release
	}
	return Backend{}.Get(ctx, key)
}

// hold starts the trial call through s in a goroutine and returns once it
// is inside the backend. finish lets it return and reports its error.
func (g *gate) hold(ctx context.Context, s Service) (finish func() error, err error) {
	done := make(chan error, 1)
	go func() {
		_, err := s.Get(ctx, trialKey)
		done <- err
	}()
	select {
	case <-g.entered:
	case err := <-done:
		return nil, fmt.Errorf("the trial call did not reach the backend: %v", err)
	case <-time.After(5 * time.Second):
		return nil, errors.New("the trial call did not reach the backend in 5s")
	}
	return func() error {
		close(g.release)
		return <-done
	}, nil
}

// TestHalfOpenAlike checks the contenders of HalfOpenReject: with the
// trial in flight every call is rejected, with the contender's half-open
// error, without reaching the backend, also well after the open period; once
// the trial succeeds the circuit closes.
func TestHalfOpenAlike(t *testing.T) {
	ctx := context.Background()
	for _, c := range Contenders {
		if c.HalfOpen == nil || c.Skips(ScenarioHalfOpenReject) {
			continue
		}
		t.Run(c.Name, func(t *testing.T) {
			g := newGate()
			s, err := c.HalfOpen(g)
			require.NoError(t, err)
			finish, err := g.hold(ctx, s)
			require.NoError(t, err)
			before := g.calls.Load()
			reject := func() {
				for i := 0; i < 100; i++ {
					_, err := s.Get(ctx, i)
					require.ErrorIs(t, err, c.HalfOpenErr)
					var oe *purgatory.OpenError
					if errors.As(err, &oe) {
						assert.Equal(t, purgatory.HalfOpen, oe.State())
					}
				}
			}
			reject()
			time.Sleep(5 * HalfOpenAfter)
			reject()
			assert.Equal(t, before, g.calls.Load(), "a call reached the backend while the trial ran")

			require.NoError(t, finish(), "the trial")
			v, err := s.Get(ctx, 7)
			require.NoError(t, err, "after a successful trial")
			assert.Equal(t, 7, v)
			assert.False(t, c.Open(s))
		})
	}
}

// TestHalfOpenSkipped checks the reason a contender with a circuit is left
// out of HalfOpenReject: while the trial is in flight, another call reaches
// the backend (at once, or after a sleep window for hystrix-go).
func TestHalfOpenSkipped(t *testing.T) {
	ctx := context.Background()
	for _, c := range Contenders {
		if c.HalfOpen == nil || !c.Skips(ScenarioHalfOpenReject) {
			continue
		}
		t.Run(c.Name, func(t *testing.T) {
			g := newGate()
			s, err := c.HalfOpen(g)
			require.NoError(t, err)
			finish, err := g.hold(ctx, s)
			require.NoError(t, err)
			before := g.calls.Load()
			assert.Eventually(t, func() bool {
				_, _ = s.Get(ctx, 1)
				return g.calls.Load() > before
			}, time.Second, time.Millisecond, "no call got through while the trial ran")
			_ = finish()
		})
	}
}

// settle gives hystrix-go's asynchronous metrics time to catch up before a
// circuit is checked to be still closed; the others count synchronously.
func settle(c Contender) {
	if c.Name == "hystrix-go" {
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRateAlike checks that every RateWindow contender has the same
// failure-rate policy: no circuit opens before RateMinCalls calls, 9
// failures in 20 calls (45%) keep it closed, 10 in 20 (50%) open it, and an
// open circuit rejects without calling the backend.
func TestRateAlike(t *testing.T) {
	ctx := context.Background()
	calls := func(t *testing.T, s Service, key, n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			_, err := s.Get(ctx, key)
			if key < 0 {
				require.ErrorIs(t, err, ErrBackend, "call %d", i)
			} else {
				require.NoError(t, err, "call %d", i)
			}
		}
	}
	for _, c := range Contenders {
		if c.Rate == nil || c.Open == nil {
			continue
		}
		t.Run(c.Name, func(t *testing.T) {
			t.Run("min calls", func(t *testing.T) {
				backend := &counting{}
				s := c.Rate(backend)
				calls(t, s, -1, RateMinCalls-1)
				settle(c)
				assert.False(t, c.Open(s), "open after %d failures in %d calls", RateMinCalls-1, RateMinCalls-1)
				calls(t, s, -1, 1)
				require.Eventually(t, func() bool { return c.Open(s) }, 2*time.Second, time.Millisecond,
					"closed after %d failures in %d calls", RateMinCalls, RateMinCalls)
				before := backend.calls.Load()
				for i := 0; i < 10; i++ {
					_, err := s.Get(ctx, i)
					require.Error(t, err)
					assert.NotErrorIs(t, err, ErrBackend)
				}
				assert.Equal(t, before, backend.calls.Load(), "open circuit called the backend")
			})
			t.Run("below the rate", func(t *testing.T) {
				s := c.Rate(Backend{})
				calls(t, s, 1, 11)
				calls(t, s, -1, 9)
				settle(c)
				assert.False(t, c.Open(s), "open at 9 failures in 20 calls")
			})
			t.Run("at the rate", func(t *testing.T) {
				s := c.Rate(Backend{})
				calls(t, s, 1, 10)
				calls(t, s, -1, 9)
				settle(c)
				assert.False(t, c.Open(s), "open at 9 failures in 19 calls")
				calls(t, s, -1, 1)
				assert.Eventually(t, func() bool { return c.Open(s) }, 2*time.Second, time.Millisecond,
					"closed at 10 failures in 20 calls")
			})
		})
	}
}
