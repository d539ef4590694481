package runtime_test

import (
	"context"
	"errors"
	"testing"
	"time"

	purgatory "github.com/purgatory-go/purgatory/runtime"
	"github.com/purgatory-go/purgatory/runtime/clocktest"
	"github.com/purgatory-go/purgatory/runtime/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func retryAfter(t *testing.T, b *purgatory.Breaker) time.Duration {
	t.Helper()
	_, err := b.Allow(context.Background())
	var oe *purgatory.OpenError
	require.True(t, errors.As(err, &oe), "want a rejection, got %v", err)
	return oe.RetryAfter
}

func TestOpenFor(t *testing.T) {
	for _, c := range []struct {
		name   string
		cfg    purgatory.Config
		d      time.Duration
		period time.Duration
	}{
		{"shorter than ttl", purgatory.Config{TTL: 30 * time.Second}, 5 * time.Second, 5 * time.Second},
		{"capped at ttl", purgatory.Config{TTL: 30 * time.Second}, time.Hour, 30 * time.Second},
		{"capped at maxttl", purgatory.Config{TTL: 30 * time.Second, MaxTTL: 2 * time.Minute}, time.Hour, 2 * time.Minute},
		{"within maxttl", purgatory.Config{TTL: 30 * time.Second, MaxTTL: 2 * time.Minute}, 90 * time.Second, 90 * time.Second},
		{"zero is ttl", purgatory.Config{TTL: 30 * time.Second}, 0, 30 * time.Second},
	} {
		for _, shared := range []bool{false, true} {
			name := c.name
			if shared {
				name += "/shared store"
			}
			t.Run(name, func(t *testing.T) {
				clk := clocktest.New(time.Unix(1000, 0))
				opts := []purgatory.Option{purgatory.WithClock(clk)}
				var peer *purgatory.Breaker
				if shared {
					st := store.NewMemory()
					opts = append(opts, purgatory.WithStore(st))
					peer = purgatory.NewFactory(purgatory.WithClock(clk), purgatory.WithStore(st)).Breaker("c", c.cfg)
				}
				b := purgatory.NewFactory(opts...).Breaker("c", c.cfg)
				b.OpenFor(c.d)
				require.Equal(t, purgatory.Open, b.State())
				assert.Equal(t, c.period, retryAfter(t, b))
				if peer != nil {
					assert.Equal(t, purgatory.Open, peer.State(), "the other process sees it open")
				}
				clk.Advance(c.period - time.Millisecond)
				assert.Equal(t, purgatory.Open, b.State())
				clk.Advance(time.Millisecond)
				assert.Equal(t, purgatory.HalfOpen, b.State())
				if peer != nil {
					assert.Equal(t, purgatory.HalfOpen, peer.State())
				}
			})
		}
	}
}

// OpenFor on a circuit already open replaces its open period.
func TestOpenForOpenCircuit(t *testing.T) {
	clk := clocktest.New(time.Unix(1000, 0))
	b := purgatory.NewFactory(purgatory.WithClock(clk)).Breaker("c", purgatory.Config{TTL: time.Minute})
	b.Open()
	assert.Equal(t, time.Minute, retryAfter(t, b))
	b.OpenFor(3 * time.Second)
	assert.Equal(t, 3*time.Second, retryAfter(t, b))
	clk.Advance(3 * time.Second)
	assert.Equal(t, purgatory.HalfOpen, b.State())
}
