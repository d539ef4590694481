package runtime

import (
	goruntime "runtime"
	"sync/atomic"
	"unsafe"
)

// callCounts are the counters stripes keep: successes and rejections
// (when counting).
type callCounts struct {
	success  atomic.Uint64
	rejected atomic.Uint64
}

// stripe is one cache line of counters. Each goroutine adds to the stripe
// its stack address picks, so that cores counting at once write different
// lines; a reader sums every stripe. The sums are exact: every add lands in
// exactly one stripe.
type stripe struct {
	callCounts
	_ [48]byte
}

// stripeSet is a circuit's call counters, inline in the Breaker: two words
// until goroutines collide on them, then, spread, also per-processor lines
// (four per processor, at most 64 lines of 64 bytes). An idle circuit so
// costs the same at any core count, and nothing more when counting is
// on; a contended one gets lines its cores do not share.
type stripeSet struct {
	one        callCounts               // the counts before spreading (and adds that raced with it)
	many       atomic.Pointer[[]stripe] // per-processor lines, once spread
	collisions atomic.Uint32            // adds to one that raced with another
}

// spreadAfter is how many collisions on the first line spread a circuit's
// counters. A collision is an add that found the line changed under it: two
// goroutines counting at the same moment, not merely one after the other.
const spreadAfter = 16

// spread gives s its per-processor lines.
func (s *stripeSet) spread() {
	lines := make([]stripe, stripeCount())
	s.many.CompareAndSwap(nil, &lines)
}

// stripeCount is how many per-processor lines a counter gets: a power of
// two, four per processor, at most 64.
func stripeCount() int {
	n := 1
	for n < 4*goruntime.GOMAXPROCS(0) && n < 64 {
		n *= 2
	}
	return n
}

// line returns the calling goroutine's line of lines.
//
//go:nosplit
func line(lines []stripe) *callCounts { return &lines[stackHash()&uintptr(len(lines)-1)].callCounts }

//go:nosplit
func stackHash() uintptr {
	var marker byte
	p := uintptr(unsafe.Pointer(&marker)) >> 11
	return p ^ p>>7
}

// add adds one to the counter at offset off of a stripe (offSuccess,
// offRejected). Before s is spread it counts on the first line, and reads
// the counter just before: if the add does not land right after that
// reading, another goroutine counted at the same moment (not merely one
// after the other); after spreadAfter such collisions, s spreads.
func (s *stripeSet) add(off uintptr) {
	if m := s.many.Load(); m != nil {
		counter(line(*m), off).Add(1)
		return
	}
	c := counter(&s.one, off)
	if old := c.Load(); c.Add(1) != old+1 {
		s.collided()
	}
}

// collided counts a collision on the first line and spreads s after
// spreadAfter of them.
func (s *stripeSet) collided() {
	if s.collisions.Add(1) == spreadAfter {
		s.spread()
	}
}

// The offsets of the counters add counts.
const (
	offSuccess  = unsafe.Offsetof(callCounts{}.success)
	offRejected = unsafe.Offsetof(callCounts{}.rejected)
)

func counter(st *callCounts, off uintptr) *atomic.Uint64 {
	return (*atomic.Uint64)(unsafe.Add(unsafe.Pointer(st), off))
}

// sum returns the sum of a field over every line.
func (s *stripeSet) sum(field func(*callCounts) *atomic.Uint64) uint64 {
	n := field(&s.one).Load()
	if m := s.many.Load(); m != nil {
		for i := range *m {
			n += field(&(*m)[i].callCounts).Load()
		}
	}
	return n
}

func successOf(s *callCounts) *atomic.Uint64 { return &s.success }

func rejectedOf(s *callCounts) *atomic.Uint64 { return &s.rejected }
