package bench

import (
	"context"
	"testing"
)

// mixedKey returns the key of call i in the Mixed scenario: every tenth
// call fails, the others succeed, so failures are never consecutive.
func mixedKey(i int) int {
	if i%10 == 9 {
		return -1
	}
	return i
}

// BenchmarkClosedSuccess measures a successful call through a closed
// circuit.
func BenchmarkClosedSuccess(b *testing.B) {
	for _, c := range Contenders {
		b.Run(c.Name, func(b *testing.B) {
			s := c.New(Backend{})
			ctx := context.Background()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, err := s.Get(ctx, i); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkClosedSuccessParallel measures successful calls through one
// closed circuit from GOMAXPROCS goroutines at once.
func BenchmarkClosedSuccessParallel(b *testing.B) {
	for _, c := range Contenders {
		b.Run(c.Name, func(b *testing.B) {
			s := c.New(Backend{})
			ctx := context.Background()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for i := 0; pb.Next(); i++ {
					if _, err := s.Get(ctx, i); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkOpenReject measures a call rejected by an open circuit.
func BenchmarkOpenReject(b *testing.B) {
	for _, c := range Contenders {
		if c.Open == nil {
			continue // the direct call has no circuit to open
		}
		b.Run(c.Name, func(b *testing.B) {
			s := c.New(Backend{})
			ctx := context.Background()
			if err := trip(ctx, s, c); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, err := s.Get(ctx, i); err == nil {
					b.Fatal("open circuit let a call through")
				}
			}
		})
	}
}

// BenchmarkMixed measures a closed circuit under 10% failures that never
// come Threshold in a row: one failing call after every nine successes.
func BenchmarkMixed(b *testing.B) {
	for _, c := range Contenders {
		if c.NoMixed {
			continue
		}
		b.Run(c.Name, func(b *testing.B) {
			s := c.New(Backend{})
			ctx := context.Background()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				key := mixedKey(i)
				if _, err := s.Get(ctx, key); (err != nil) != (key < 0) {
					b.Fatalf("call %d: err = %v", i, err)
				}
			}
			if c.Open != nil && c.Open(s) {
				b.Fatal("circuit opened under Mixed")
			}
		})
	}
}
