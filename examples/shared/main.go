// Command shared shows one circuit shared by several processes through
// Redis: run two copies against one Redis, make one of them fail, and the
// other one stops calling too.
//
//	redis-server --port 6379 &
//	go run ./examples/shared -redis localhost:6379 -id A -fail 1 -n 10   # trips the circuit
//	go run ./examples/shared -redis localhost:6379 -id B -fail 0 -n 5    # rejected: open in A
//
// Without -redis each process has its own in-memory circuit, and B calls
// through. Each call to the (simulated) payment provider goes through a
// breaker with Breaker.Do; state changes, as this process sees them, are
// printed as they happen, whichever process caused them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	purgatory "github.com/purgatory-go/purgatory/runtime"
	"github.com/purgatory-go/purgatory/runtime/store/redis"
)

// config is what the flags set.
type config struct {
	id        string
	redis     string
	prefix    string
	fail      float64
	calls     int
	interval  time.Duration
	threshold int
	ttl       time.Duration
	timeout   time.Duration // bound of each Redis call
}

func main() {
	c, err := parseFlags(os.Args[1:], os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case err != nil:
		os.Exit(2) // parseFlags printed what is wrong, and the usage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, c, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "shared:", err)
		os.Exit(1)
	}
}

// parseFlags reads the command line args into a config. A bad one gets
// an error naming the flag, printed to errOut with the usage.
func parseFlags(args []string, errOut io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("shared", flag.ContinueOnError)
	fs.SetOutput(errOut)
	fs.StringVar(&c.id, "id", fmt.Sprintf("pid %d", os.Getpid()), "name of this process in the output")
	fs.StringVar(&c.redis, "redis", "", "Redis address (host:port) to share the circuit through; empty: in-memory, not shared")
	fs.StringVar(&c.prefix, "prefix", redis.DefaultPrefix, "Redis key prefix")
	fs.Float64Var(&c.fail, "fail", 0, "share of calls to the payment provider that fail, 0 to 1")
	fs.IntVar(&c.calls, "n", 0, "number of calls to make; 0: until interrupted")
	fs.DurationVar(&c.interval, "every", 200*time.Millisecond, "time between calls")
	fs.IntVar(&c.threshold, "threshold", 3, "consecutive failures that open the circuit")
	fs.DurationVar(&c.ttl, "ttl", 10*time.Second, "how long the circuit stays open")
	fs.DurationVar(&c.timeout, "timeout", redis.DefaultTimeout, "bound of each Redis call; past it the process carries on locally")
	if err := fs.Parse(args); err != nil {
		return c, err // the flag package printed it, with the usage
	}
	var bad string
	switch {
	case fs.NArg() > 0:
		bad = fmt.Sprintf("unexpected argument %q: every setting is a flag", fs.Arg(0))
	case c.fail < 0 || c.fail > 1:
		bad = fmt.Sprintf("-fail %v: give a share between 0 and 1", c.fail)
	case c.calls < 0:
		bad = fmt.Sprintf("-n %d: give 0 (until interrupted) or more", c.calls)
	case c.interval < 0:
		bad = fmt.Sprintf("-every %v: give 0 or more", c.interval)
	case c.threshold < 1:
		bad = fmt.Sprintf("-threshold %d: give 1 or more", c.threshold)
	case c.ttl <= 0:
		bad = fmt.Sprintf("-ttl %v: give a positive duration", c.ttl)
	case c.timeout <= 0:
		bad = fmt.Sprintf("-timeout %v: give a positive duration", c.timeout)
	default:
		return c, nil
	}
	err := errors.New("shared: " + bad)
	fmt.Fprintln(errOut, err)
	fs.Usage()
	return c, err
}

// errDeclined is what the simulated payment provider fails with.
var errDeclined = errors.New("payment provider: 503 service unavailable")

// run makes c.calls calls (or calls until ctx is done) through a breaker
// on the "payments" circuit and reports each one to out.
func run(ctx context.Context, c config, out io.Writer) error {
	var mu sync.Mutex // events arrive from other goroutines too
	logf := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(out, "%s [%s] %s\n", time.Now().Format("15:04:05.000"), c.id, fmt.Sprintf(format, args...))
	}
	opts := []purgatory.Option{
		purgatory.WithThreshold(c.threshold),
		purgatory.WithTTL(c.ttl),
		purgatory.WithListener(purgatory.ListenerFunc(func(e purgatory.Event) {
			switch e.Kind {
			case purgatory.EventStateChanged:
				logf("circuit %s: %s -> %s", e.Circuit, e.From, e.To)
			case purgatory.EventStoreError:
				logf("store error (carrying on locally): %v", e.Err)
			case purgatory.EventConfigConflict:
				logf("config conflict: %v", e.Err)
			}
		})),
	}
	if c.redis != "" {
		client := goredis.NewClient(&goredis.Options{Addr: c.redis, ContextTimeoutEnabled: true})
		defer client.Close()
		st := redis.New(client, redis.WithPrefix(c.prefix), redis.WithTimeout(c.timeout))
		defer st.Close()
		opts = append(opts, purgatory.WithStore(st))
		logf("sharing circuit state through Redis at %s", c.redis)
	} else {
		logf("in-memory circuit state (not shared; use -redis to share)")
	}
	factory := purgatory.NewFactory(opts...)
	defer factory.Close() // before the store's: delivers the last results to Redis
	breaker := factory.Breaker("payments", purgatory.Config{})
	logf("circuit payments is %s", breaker.State())

	// charge stands for the call to the payment provider.
	charge := func(context.Context) error {
		if rand.Float64() < c.fail {
			return errDeclined
		}
		return nil
	}
	tick := time.NewTicker(max(c.interval, time.Millisecond))
	defer tick.Stop()
	for i := 1; c.calls == 0 || i <= c.calls; i++ {
		var oe *purgatory.OpenError
		switch err := breaker.Do(ctx, charge); {
		case err == nil:
			logf("call %d: ok", i)
		case errors.As(err, &oe):
			logf("call %d: rejected without calling: %v", i, err)
		default:
			logf("call %d: failed: %v", i, err)
		}
		if c.calls != 0 && i == c.calls {
			break
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
	return nil
}
