// Stand-in for purgatorygen output, written by hand in the shape the
// generator emits (see DESIGN.md, "The generated code") until
// cmd/purgatorygen works; it is then replaced by `go generate`.

package bench

import (
	"context"
	"time"

	purgatory "github.com/purgatory-go/purgatory/runtime"
)

// ServiceCircuit wraps a Service with circuit breakers:
//   - Get: circuit "bench"
type ServiceCircuit struct {
	inner    Service
	fallback Service
	bench    *purgatory.Breaker
}

var _ Service = (*ServiceCircuit)(nil)

// NewServiceCircuit returns a ServiceCircuit that calls inner through
// breakers made by factory (nil factory: purgatory.Default()).
func NewServiceCircuit(inner Service, factory *purgatory.Factory) *ServiceCircuit {
	if factory == nil {
		factory = purgatory.Default()
	}
	return &ServiceCircuit{
		inner: inner,
		bench: factory.Breaker("bench", purgatory.Config{Threshold: 5, TTL: 30 * time.Second}),
	}
}

// WithFallback sets the Service called instead of the inner one while a
// circuit rejects calls, and returns c.
func (c *ServiceCircuit) WithFallback(fb Service) *ServiceCircuit {
	c.fallback = fb
	return c
}

// Get calls the inner Service through circuit "bench".
func (c *ServiceCircuit) Get(ctx context.Context, key int) (int, error) {
	t, err := c.bench.Allow(ctx)
	if err != nil {
		if fb := c.fallback; fb != nil {
			return fb.Get(ctx, key)
		}
		return 0, err
	}
	done := false
	defer func() {
		if !done {
			c.bench.Done(ctx, t, purgatory.ErrPanicked)
		}
	}()
	r0, r1 := c.inner.Get(ctx, key)
	done = true
	c.bench.Done(ctx, t, r1)
	return r0, r1
}
