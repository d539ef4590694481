package redis

import (
	"context"
	"errors"
	"net"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/purgatory-go/purgatory/runtime/store"
)

// healthInterval is how long the subscriber waits for a message before it
// pings Redis; a second silent interval makes it reconnect.
const healthInterval = 2 * time.Second

// Watch implements [store.Store]: fn gets every change of the named circuit
// made through any store on the same Redis and prefix, and the current
// record when the watch starts and whenever the subscription is
// re-established. fn must not block.
func (s *Store) Watch(name string, fn func(store.Snapshot)) (stop func()) {
	w := &watcher{fn: fn}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return func() {}
	}
	ws := s.watchers[name]
	if ws == nil {
		ws = make(map[*watcher]struct{})
		s.watchers[name] = ws
	}
	ws[w] = struct{}{}
	if !s.started {
		s.started = true
		s.wg.Add(2)
		go s.subscribe()
		go s.resyncer()
	}
	s.pending[name] = struct{}{}
	s.mu.Unlock()
	s.wake()
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if ws := s.watchers[name]; ws != nil {
			delete(ws, w)
			if len(ws) == 0 {
				delete(s.watchers, name)
			}
		}
	}
}

func (s *Store) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// subscribe keeps one subscription to the channel alive until Close.
func (s *Store) subscribe() {
	defer s.wg.Done()
	for {
		ps := s.client.Subscribe(s.ctx, s.channel)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = ps.Close()
			return
		}
		s.ps = ps
		s.mu.Unlock()
		s.receive(ps)
		_ = ps.Close()
		if !s.sleep(100 * time.Millisecond) {
			return
		}
	}
}

// receive handles the messages of ps until Close, or until the connection
// stays silent even to a ping.
func (s *Store) receive(ps *goredis.PubSub) {
	pinged := false
	backoff := 10 * time.Millisecond
	for {
		msg, err := ps.ReceiveTimeout(s.ctx, s.health)
		if s.ctx.Err() != nil {
			return
		}
		if err != nil {
			if isTimeout(err) {
				if pinged {
					return // dead connection: start over with a new one
				}
				ctx, cancel := context.WithTimeout(s.ctx, s.health)
				err = ps.Ping(ctx)
				cancel()
				pinged = err == nil
				continue
			}
			// A broken connection; go-redis dials again (and subscribes
			// again) on the next receive.
			if !s.sleep(backoff) {
				return
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		pinged, backoff = false, 10*time.Millisecond
		switch m := msg.(type) {
		case *goredis.Subscription:
			if m.Kind == "subscribe" {
				s.resyncAll()
			}
		case *goredis.Message:
			s.dispatch(m.Payload)
		}
	}
}

// sleep waits d, and reports false if the store was closed meanwhile.
func (s *Store) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.ctx.Done():
		return false
	}
}

// dispatch hands a published snapshot to the watchers of its circuit.
func (s *Store) dispatch(payload string) {
	name, snap, ok := parseMessage(payload)
	if !ok {
		return
	}
	s.deliver(name, snap)
}

func (s *Store) deliver(name string, snap store.Snapshot) {
	s.mu.Lock()
	ws := s.watchers[name]
	fns := make([]func(store.Snapshot), 0, len(ws))
	for w := range ws {
		fns = append(fns, w.fn)
	}
	s.mu.Unlock()
	for _, fn := range fns {
		fn(snap)
	}
}

// parseMessage parses "1 <state> <gen> <seq> <failures> <claimed>
// <succeeded> <open_until> <circuit>".
func parseMessage(payload string) (string, store.Snapshot, bool) {
	f := strings.SplitN(payload, " ", 9)
	if len(f) != 9 || f[0] != "1" {
		return "", store.Snapshot{}, false
	}
	snap, err := parseSnapshot(f[1:8])
	if err != nil {
		return "", store.Snapshot{}, false
	}
	return f[8], snap, true
}

// resyncAll asks for every watched circuit to be read again.
func (s *Store) resyncAll() {
	s.mu.Lock()
	for name := range s.watchers {
		s.pending[name] = struct{}{}
	}
	s.mu.Unlock()
	s.wake()
}

// resyncer reads the records of pending circuits and hands them to their
// watchers, until Close. It tries again, backing off, those it could not
// read.
func (s *Store) resyncer() {
	defer s.wg.Done()
	backoff := 10 * time.Millisecond
	for {
		select {
		case <-s.kick:
		case <-s.ctx.Done():
			return
		}
		s.mu.Lock()
		names := make([]string, 0, len(s.pending))
		for name := range s.pending {
			names = append(names, name)
		}
		clear(s.pending)
		s.mu.Unlock()
		var failed []string
		for _, name := range names {
			snap, ok, err := s.get(s.ctx, name)
			if s.ctx.Err() != nil {
				return
			}
			switch {
			case err != nil:
				failed = append(failed, name)
			case ok:
				s.deliver(name, snap)
			}
		}
		if len(failed) == 0 {
			backoff = 10 * time.Millisecond
			continue
		}
		s.mu.Lock()
		for _, name := range failed {
			if s.watchers[name] != nil {
				s.pending[name] = struct{}{}
			}
		}
		s.mu.Unlock()
		if !s.sleep(backoff) {
			return
		}
		backoff = min(2*backoff, time.Second)
		s.wake()
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
