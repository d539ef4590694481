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
	_        [48]byte
}

type stripes []stripe

// newStripes returns a power-of-two number of stripes: four per processor,
// at most 64.
func newStripes() stripes { return make(stripes, stripeCount()) }

func stripeCount() int {
	n := 1
	for n < 4*goruntime.GOMAXPROCS(0) && n < 64 {
		n *= 2
	}
	return n
}

// mine returns the calling goroutine's stripe, chosen by the address of its
// stack: goroutines running at once have different stacks.
//
//go:nosplit
func (s stripes) mine() *stripe { return &s[stackHash()&uintptr(len(s)-1)] }

//go:nosplit
func stackHash() uintptr {
	var marker byte
	p := uintptr(unsafe.Pointer(&marker)) >> 11
	return p ^ p>>7
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

// tally holds a rate circuit's calls not merged into its window yet, for
// one closed generation: a call is counted only into the tally of the
// generation it was admitted in, and a new closed generation starts a new
// tally, so that no call outlives its generation, merged or not.
//
// Each stripe packs calls (high 32 bits) and failures (low 32 bits) into one
// word, so that one add counts a call and its failure together and one
// swap takes both: a merge never holds a failure without its call, and
// adds that race with it land in this merge or the next, whole. A stripe
// holding 2^31 calls asks for a merge (see recordCall), so neither half
// overflows.
type tally struct {
	gen uint64
	s   []tallyStripe
}

type tallyStripe struct {
	n atomic.Uint64
	_ [56]byte
}

const (
	tallyCall = 1 << 32 // one call
	tallyFail = 1       // one failure
)

func newTally(gen uint64) *tally { return &tally{gen: gen, s: make([]tallyStripe, stripeCount())} }

// add counts one call, failed or not, and reports whether its stripe asks
// for a merge.
func (t *tally) add(failed bool) bool {
	d := uint64(tallyCall)
	if failed {
		d |= tallyFail
	}
	return t.s[stackHash()&uintptr(len(t.s)-1)].n.Add(d)>>63 != 0
}

// sum returns the counts not merged yet.
func (t *tally) sum() (calls, failed uint64) {
	for i := range t.s {
		v := t.s[i].n.Load()
		calls += v >> 32
		failed += v & (tallyCall - 1)
	}
	return calls, failed
}

// take returns the counts not merged yet and zeroes them.
func (t *tally) take() (calls, failed uint64) {
	for i := range t.s {
		v := t.s[i].n.Swap(0)
		calls += v >> 32
		failed += v & (tallyCall - 1)
	}
	return calls, failed
}
