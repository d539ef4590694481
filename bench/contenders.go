package bench

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/afex/hystrix-go/hystrix"
	"github.com/cenk/backoff"
	eapache "github.com/eapache/go-resiliency/breaker"
	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	purgatory "github.com/purgatory-go/purgatory/runtime"
	rubyist "github.com/rubyist/circuitbreaker"
	"github.com/sony/gobreaker/v2"
)

// OpenFor is how long every contender's circuit stays open.
const OpenFor = 30 * time.Second

// Contender is one way of guarding a Backend.
type Contender struct {
	// Name names the sub-benchmark: Benchmark<Scenario>/<Name>.
	Name string
	// New returns inner guarded by this contender, with a circuit of its
	// own that no other Service shares.
	New func(inner Service) Service
	// Open reports whether the circuit of a Service made by New is open.
	// Nil for the direct call, which has no circuit.
	Open func(Service) bool
	// Note says where the contender cannot be configured like the others.
	Note string
	// NoMixed leaves the contender out of the Mixed scenario, because
	// isolated failures open its circuit.
	NoMixed bool
}

// Contenders lists every contender, the direct call first.
var Contenders = []Contender{
	{
		Name: "direct",
		New:  func(inner Service) Service { return inner },
	},
	{
		Name: "purgatory-generated",
		New: func(inner Service) Service {
			return NewServiceCircuit(inner, purgatory.NewFactory())
		},
		Open: func(s Service) bool { return s.(*ServiceCircuit).bench.State() == purgatory.Open },
	},
	{
		Name: "purgatory-do",
		New: func(inner Service) Service {
			f := purgatory.NewFactory()
			return &doService{inner: inner, b: f.Breaker("bench", purgatory.Config{Threshold: Threshold, TTL: OpenFor})}
		},
		Open: func(s Service) bool { return s.(*doService).b.State() == purgatory.Open },
	},
	{
		Name: "gobreaker",
		New: func(inner Service) Service {
			return &gobreakerService{inner: inner, cb: gobreaker.NewCircuitBreaker[int](gobreaker.Settings{
				Name:    "bench",
				Timeout: OpenFor,
				ReadyToTrip: func(c gobreaker.Counts) bool {
					return c.ConsecutiveFailures >= Threshold
				},
			})}
		},
		Open: func(s Service) bool { return s.(*gobreakerService).cb.State() == gobreaker.StateOpen },
	},
	{
		Name: "failsafe-go",
		New: func(inner Service) Service {
			cb := circuitbreaker.NewBuilder[int]().
				WithFailureThreshold(Threshold).
				WithDelay(OpenFor).
				Build()
			return &failsafeService{inner: inner, cb: cb, exec: failsafe.With[int](cb)}
		},
		Open: func(s Service) bool { return s.(*failsafeService).cb.IsOpen() },
	},
	{
		Name: "hystrix-go",
		New:  newHystrix,
		Open: func(s Service) bool {
			c, _, err := hystrix.GetCircuit(s.(*hystrixService).name)
			return err == nil && c.IsOpen()
		},
		Note: "hystrix opens on an error percentage over a rolling 10 s window, not on consecutive failures: " +
			"configured to open at >= 50% errors once 5 requests were seen, 30 s sleep window; " +
			"every call runs the function in a new goroutine (hystrix.Do has no inline mode)",
	},
	{
		Name: "go-resiliency",
		New: func(inner Service) Service {
			return &eapacheService{inner: inner, b: eapache.New(Threshold, 1, OpenFor)}
		},
		Open: func(s Service) bool { return s.(*eapacheService).b.GetState() == eapache.Open },
		Note: "eapache/go-resiliency opens after 5 errors with no error-free period of the timeout (30 s) between them: " +
			"successes do not reset the count, so it cannot stay closed under Mixed and is left out of that scenario",
		NoMixed: true,
	},
	{
		Name: "rubyist",
		New: func(inner Service) Service {
			return &rubyistService{inner: inner, cb: rubyist.NewBreakerWithOptions(&rubyist.Options{
				ShouldTrip: rubyist.ConsecutiveTripFunc(Threshold),
				BackOff:    backoff.NewConstantBackOff(OpenFor),
			})}
		},
		Open: func(s Service) bool { return s.(*rubyistService).cb.Tripped() },
	},
}

// doService guards Backend with purgatory's closure form, Breaker.Do.
type doService struct {
	inner Service
	b     *purgatory.Breaker
}

func (s *doService) Get(ctx context.Context, key int) (int, error) {
	var v int
	err := s.b.Do(ctx, func(ctx context.Context) error {
		var err error
		v, err = s.inner.Get(ctx, key)
		return err
	})
	return v, err
}

// gobreakerService guards Backend with sony/gobreaker/v2.
type gobreakerService struct {
	inner Service
	cb    *gobreaker.CircuitBreaker[int]
}

func (s *gobreakerService) Get(ctx context.Context, key int) (int, error) {
	return s.cb.Execute(func() (int, error) { return s.inner.Get(ctx, key) })
}

// failsafeService guards Backend with a failsafe-go circuit breaker, through
// an executor built once.
type failsafeService struct {
	inner Service
	cb    circuitbreaker.CircuitBreaker[int]
	exec  failsafe.Executor[int]
}

func (s *failsafeService) Get(ctx context.Context, key int) (int, error) {
	return s.exec.Get(func() (int, error) { return s.inner.Get(ctx, key) })
}

// hystrixService guards Backend with afex/hystrix-go.
type hystrixService struct {
	inner Service
	name  string
}

var hystrixSeq atomic.Int64

// newHystrix configures a hystrix command of its own (hystrix keeps its
// circuits in a global registry, by name).
func newHystrix(inner Service) Service {
	name := fmt.Sprintf("bench-%d", hystrixSeq.Add(1))
	hystrix.ConfigureCommand(name, hystrix.CommandConfig{
		Timeout:                int(time.Minute / time.Millisecond),
		MaxConcurrentRequests:  10000,
		RequestVolumeThreshold: Threshold,
		SleepWindow:            int(OpenFor / time.Millisecond),
		ErrorPercentThreshold:  50,
	})
	return &hystrixService{inner: inner, name: name}
}

func (s *hystrixService) Get(ctx context.Context, key int) (int, error) {
	var v int
	err := hystrix.DoC(ctx, s.name, func(ctx context.Context) error {
		var err error
		v, err = s.inner.Get(ctx, key)
		return err
	}, nil)
	return v, err
}

// eapacheService guards Backend with eapache/go-resiliency/breaker.
type eapacheService struct {
	inner Service
	b     *eapache.Breaker
}

func (s *eapacheService) Get(ctx context.Context, key int) (int, error) {
	var v int
	err := s.b.Run(func() error {
		var err error
		v, err = s.inner.Get(ctx, key)
		return err
	})
	return v, err
}

// rubyistService guards Backend with rubyist/circuitbreaker.
type rubyistService struct {
	inner Service
	cb    *rubyist.Breaker
}

func (s *rubyistService) Get(ctx context.Context, key int) (int, error) {
	var v int
	err := s.cb.CallContext(ctx, func() error {
		var err error
		v, err = s.inner.Get(ctx, key)
		return err
	}, 0)
	return v, err
}
