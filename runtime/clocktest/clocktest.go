// Package clocktest provides a fake clock for tests of code that uses
// purgatory breakers, so that no test sleeps for a TTL:
//
//	clk := clocktest.New(time.Unix(0, 0))
//	f := purgatory.NewFactory(purgatory.WithClock(clk))
//	// ... trip a breaker ...
//	clk.Advance(30 * time.Second) // the circuit is half-open now
package clocktest

import (
	"sort"
	"sync"
	"time"
)

// Clock is a fake clock whose time moves only when Advance is called. Its
// timers run synchronously inside Advance, in the order of their due times.
// It is safe for concurrent use.
type Clock struct {
	mu     sync.Mutex
	now    time.Time
	seq    int
	timers []*timer
}

type timer struct {
	at   time.Time
	seq  int
	f    func()
	done bool
}

// New returns a fake clock set to start.
func New(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the fake time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc arranges for f to run, inside a later Advance, once the fake
// time has reached Now()+d. A timer is never run by AfterFunc itself, even
// with d <= 0. stop cancels it and reports whether it had not run yet.
func (c *Clock) AfterFunc(d time.Duration, f func()) (stop func() bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	t := &timer{at: c.now.Add(d), seq: c.seq, f: f}
	c.timers = append(c.timers, t)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if t.done {
			return false
		}
		t.done = true
		return true
	}
}

// Advance moves the fake time forward by d and runs every timer that is due,
// including those that due timers schedule, each with the clock set to its
// due time.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		t := c.nextDue(end)
		if t == nil {
			c.now = end
			c.mu.Unlock()
			return
		}
		t.done = true
		if t.at.After(c.now) {
			c.now = t.at
		}
		c.mu.Unlock()
		t.f()
	}
}

// Pending returns how many timers are waiting to run.
func (c *Clock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.timers {
		if !t.done {
			n++
		}
	}
	return n
}

// nextDue drops finished timers and returns the earliest one due by end.
// c.mu is held.
func (c *Clock) nextDue(end time.Time) *timer {
	live := c.timers[:0]
	for _, t := range c.timers {
		if !t.done {
			live = append(live, t)
		}
	}
	clear(c.timers[len(live):])
	c.timers = live
	sort.Slice(live, func(i, j int) bool {
		if !live[i].at.Equal(live[j].at) {
			return live[i].at.Before(live[j].at)
		}
		return live[i].seq < live[j].seq
	})
	if len(live) == 0 || live[0].at.After(end) {
		return nil
	}
	return live[0]
}
