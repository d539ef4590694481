package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

//go:generate go tool purgatorygen

// ChargeRequest asks the provider to charge a card.
type ChargeRequest struct {
	Card   string
	Amount int // cents
}

// Receipt is the provider's proof of a charge.
type Receipt struct {
	ID string
}

// ErrUnavailable is what the provider returns while it is down.
var ErrUnavailable = errors.New("provider unavailable")

// ErrDeclined is the card holder's problem, not the provider's: it is
// excluded, so it does not count as a failure.
var ErrDeclined = errors.New("card declined")

// PaymentClient talks to the payment provider.
//
//purgatory:circuit name=payments threshold=3 ttl=500ms exclude=ErrDeclined
type PaymentClient interface {
	Charge(ctx context.Context, req ChargeRequest) (*Receipt, error)

	//purgatory:skip
	Close() error
}

// flakyProvider is a fake provider that can be taken down and brought back.
type flakyProvider struct {
	mu    sync.Mutex
	down  bool
	calls int
}

var _ PaymentClient = (*flakyProvider)(nil)

// setDown takes the provider down or brings it back.
func (p *flakyProvider) setDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
}

// Charge fails while the provider is down and declines the card "0000".
func (p *flakyProvider) Charge(_ context.Context, req ChargeRequest) (*Receipt, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	switch {
	case p.down:
		return nil, ErrUnavailable
	case req.Card == "0000":
		return nil, ErrDeclined
	}
	return &Receipt{ID: fmt.Sprintf("r-%d", p.calls)}, nil
}

// Close does nothing.
func (p *flakyProvider) Close() error { return nil }

// Calls returns how many calls reached the provider.
func (p *flakyProvider) Calls() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls
}
