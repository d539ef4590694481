package runtime

import (
	goruntime "runtime"
	"sync/atomic"
	"unsafe"
)

// stripe is one cache line of counters. Each goroutine adds to the stripe
// its stack address picks, so that cores counting at once write different
// lines; a reader sums every stripe. The sums are exact: every add lands in
// exactly one stripe.
type stripe struct {
	success  atomic.Uint64 // successes (when counting)
	rejected atomic.Uint64 // rejections (when counting)
	calls    atomic.Uint64 // rate window: calls since the last flush
	failed   atomic.Uint64 // rate window: failures since the last flush
	_        [32]byte
}

type stripes []stripe

// newStripes returns a power-of-two number of stripes: four per processor,
// at most 64.
func newStripes() stripes {
	n := 1
	for n < 4*goruntime.GOMAXPROCS(0) && n < 64 {
		n *= 2
	}
	return make(stripes, n)
}

// mine returns the calling goroutine's stripe, chosen by the address of its
// stack: goroutines running at once have different stacks.
//
//go:nosplit
func (s stripes) mine() *stripe {
	var marker byte
	p := uintptr(unsafe.Pointer(&marker)) >> 11
	return &s[(p^p>>7)&uintptr(len(s)-1)]
}

func (s stripes) sum(field func(*stripe) *atomic.Uint64) uint64 {
	var n uint64
	for i := range s {
		n += field(&s[i]).Load()
	}
	return n
}

// take returns the sum of a field and zeroes it, exactly: an add that
// races with take lands in this sum or in the next.
func (s stripes) take(field func(*stripe) *atomic.Uint64) uint64 {
	var n uint64
	for i := range s {
		n += field(&s[i]).Swap(0)
	}
	return n
}

func successOf(s *stripe) *atomic.Uint64  { return &s.success }
func rejectedOf(s *stripe) *atomic.Uint64 { return &s.rejected }
func callsOf(s *stripe) *atomic.Uint64    { return &s.calls }
func failedOf(s *stripe) *atomic.Uint64   { return &s.failed }
