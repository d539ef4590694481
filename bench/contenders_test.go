package bench

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

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

// TestMixedStaysClosed checks that the Mixed scenario never opens a
// circuit of the contenders it runs.
func TestMixedStaysClosed(t *testing.T) {
	ctx := context.Background()
	for _, c := range Contenders {
		if c.Open == nil || c.NoMixed {
			continue
		}
		t.Run(c.Name, func(t *testing.T) {
			s := c.New(Backend{})
			for i := 0; i < 1000; i++ {
				key := mixedKey(i)
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

// TestNoMixedOpens checks the reason a contender is left out of Mixed: the
// pattern opens its circuit.
func TestNoMixedOpens(t *testing.T) {
	ctx := context.Background()
	for _, c := range Contenders {
		if !c.NoMixed {
			continue
		}
		t.Run(c.Name, func(t *testing.T) {
			s := c.New(Backend{})
			for i := 0; i < 10*Threshold; i++ {
				_, _ = s.Get(ctx, mixedKey(i))
			}
			assert.True(t, c.Open(s))
		})
	}
}
