package redis

import (
	"context"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// healthInterval is how long the subscriber waits for a message before it
// pings Redis; a second silent interval makes it reconnect.
const healthInterval = 2 * time.Second

// subscribe keeps one subscription to the channel alive until Close.
func (h *hub) subscribe() {
	defer h.wg.Done()
	backoff := 100 * time.Millisecond
	for {
		ps := h.conn.client.Subscribe(h.ctx, h.conn.channel)
		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			_ = ps.Close()
			return
		}
		h.ps = ps
		h.mu.Unlock()
		ok, err := h.receive(ps)
		_ = ps.Close()
		if h.ctx.Err() != nil {
			return
		}
		if ok {
			backoff = 100 * time.Millisecond
		}
		if err != nil {
			h.report("subscribe", fmt.Errorf("purgatory/redis: subscription to %s: %w", h.conn.channel, err))
		}
		if !h.sleep(backoff) {
			return
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// receive handles the messages of ps until Close, an error, or until the
// connection stays silent even to a ping. ok reports whether it was
// subscribed.
func (h *hub) receive(ps *goredis.PubSub) (ok bool, err error) {
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(h.ctx, h.health)
		if h.ctx.Err() != nil {
			return ok, nil
		}
		if err != nil {
			if !isTimeout(err) {
				return ok, err
			}
			if pinged {
				return ok, errors.New("no answer to a ping: connection replaced")
			}
			ctx, cancel := context.WithTimeout(h.ctx, h.health)
			err = ps.Ping(ctx)
			cancel()
			pinged = err == nil
			continue
		}
		pinged = false
		switch m := msg.(type) {
		case *goredis.Subscription:
			if m.Kind == "subscribe" {
				ok = true
				h.report("subscribe", nil)
				h.resyncAll()
			}
		case *goredis.Message:
			h.dispatch(m.Payload)
		case *goredis.Pong:
		}
	}
}

// sleep waits d, and reports false if the store was closed meanwhile.
func (h *hub) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-h.ctx.Done():
		return false
	}
}

// resyncAll reads every watched circuit again (after a (re)subscription:
// messages may have been missed).
func (h *hub) resyncAll() {
	h.mu.Lock()
	h.subscribes++
	for name, t := range h.tracks {
		h.requestLocked(name, t)
	}
	h.mu.Unlock()
}

// close stops the subscriber and every read for watchers, and waits for
// them.
func (h *hub) close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	h.cancel()
	ps := h.ps
	h.mu.Unlock()
	if ps != nil {
		_ = ps.Close()
	}
	h.wg.Wait()
}

// report hands err to the error handler when an episode of kind begins;
// err == nil ends the episode.
func (h *hub) report(kind string, err error) {
	h.mu.Lock()
	first := h.episodeLocked(kind, err)
	h.mu.Unlock()
	if first && h.onError != nil {
		h.onError(err)
	}
}

// episodeLocked notes that an operation of kind failed with err (nil: it
// worked, which ends an episode) and reports whether err begins an
// episode, to be handed to the error handler once h.mu is released. Every
// change of h.failing goes through it. h.mu is held.
func (h *hub) episodeLocked(kind string, err error) (first bool) {
	first = err != nil && !h.failing[kind]
	h.failing[kind] = err != nil
	return first
}
