package main

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

//go:generate go tool purgatorygen

// ErrOutOfStock is the caller's problem, not the inventory's: excluded.
var ErrOutOfStock = errors.New("out of stock")

// Inventory reserves items.
//
//purgatory:circuit name=inventory threshold=3 ttl=2s exclude=ErrOutOfStock
type Inventory interface {
	Reserve(ctx context.Context, sku string) error
}

// Shipping quotes delivery prices.
//
//purgatory:circuit name=shipping threshold=5 ttl=3s
type Shipping interface {
	Quote(ctx context.Context, destination string) (cents int, err error)
}

// Recommendations suggests products.
//
//purgatory:circuit name=recommendations threshold=4 ttl=1500ms trials=2
type Recommendations interface {
	For(ctx context.Context, user string) ([]string, error)
}

// outage is a fake backend's schedule: it is down from downAt to upAt in
// every period, counted from start, and also fails every failEvery-th call
// (0: never) while up.
type outage struct {
	start        time.Time
	period       time.Duration
	downAt, upAt time.Duration
	failEvery    uint64
	calls        atomic.Uint64
}

// err returns the error of a call made now, if it fails.
func (o *outage) err(what string) error {
	n := o.calls.Add(1)
	at := time.Since(o.start) % o.period
	if at >= o.downAt && at < o.upAt {
		return fmt.Errorf("%s: backend down", what)
	}
	if o.failEvery > 0 && n%o.failEvery == 0 {
		return fmt.Errorf("%s: backend hiccup", what)
	}
	return nil
}

// fakeInventory goes down for 4s in every 12s; every 7th reservation finds
// the item out of stock.
type fakeInventory struct{ outage }

func (f *fakeInventory) Reserve(_ context.Context, sku string) error {
	if err := f.err("inventory"); err != nil {
		return err
	}
	if f.calls.Load()%7 == 0 {
		return ErrOutOfStock
	}
	return nil
}

// fakeShipping goes down for 5s in every 20s.
type fakeShipping struct{ outage }

func (f *fakeShipping) Quote(_ context.Context, destination string) (int, error) {
	if err := f.err("shipping"); err != nil {
		return 0, err
	}
	return 499 + len(destination), nil
}

// fakeRecommendations goes down for 3s in every 9s and hiccups now and
// then.
type fakeRecommendations struct{ outage }

func (f *fakeRecommendations) For(_ context.Context, user string) ([]string, error) {
	if err := f.err("recommendations"); err != nil {
		return nil, err
	}
	return []string{"socks for " + user}, nil
}
