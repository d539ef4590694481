package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	purgatory "github.com/purgatory-go/purgatory/runtime"
	"github.com/purgatory-go/purgatory/runtime/clocktest"
)

// A group gives each key, here a tenant, a circuit of its own, made on
// first use: one tenant's failing backend does not stop the others.
func ExampleGroup() {
	factory := purgatory.NewFactory(purgatory.WithClock(clocktest.New(time.Unix(0, 0)))) // a fake clock: RetryAfter stays 30s
	tenants := factory.Group("reports", purgatory.Config{Threshold: 2}, purgatory.WithMaxKeys(500))

	fetch := func(ctx context.Context, tenant string) error {
		if tenant == "acme" {
			return errors.New("acme's database is down")
		}
		return nil
	}
	for _, tenant := range []string{"acme", "globex", "acme", "globex", "acme"} {
		b := tenants.Breaker(tenant)
		err := b.Do(context.Background(), func(ctx context.Context) error { return fetch(ctx, tenant) })
		fmt.Printf("%-8s %-16s %v\n", tenant, b.Name(), err)
	}
	fmt.Println(tenants.Breaker("").Name(), tenants.Breaker("a/b c").Name(), tenants.Breaker("acme").Group())
	// Output:
	// acme     reports/acme     acme's database is down
	// globex   reports/globex   <nil>
	// acme     reports/acme     acme's database is down
	// globex   reports/globex   <nil>
	// acme     reports/acme     purgatory: circuit "reports/acme" is open: retry after 30s
	// reports/~empty reports/a/b c reports
}

// OpenFor opens a circuit for as long as a server asked, within the
// circuit's longest open period.
func ExampleBreaker_OpenFor() {
	factory := purgatory.NewFactory(purgatory.WithClock(clocktest.New(time.Unix(0, 0))))
	b := factory.Breaker("search", purgatory.Config{TTL: 30 * time.Second, MaxTTL: 2 * time.Minute})
	b.OpenFor(45 * time.Second) // a server said "Retry-After: 45"
	var open *purgatory.OpenError
	errors.As(b.Do(context.Background(), func(context.Context) error { return nil }), &open)
	fmt.Println(b.State(), open.RetryAfter)
	// Output: open 45s
}
