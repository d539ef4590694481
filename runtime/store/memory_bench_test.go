package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/purgatory-go/purgatory/runtime/store"
)

// BenchmarkMemoryOps: the memory store's operations, one circuit, one
// goroutine: a failure and the success that resets it (Failure, Success),
// and a half-open claim given back (Claim, Release).
func BenchmarkMemoryOps(b *testing.B) {
	ctx := context.Background()
	set := store.Settings{Threshold: 1_000_000, TTL: time.Minute, Trials: 1}
	now := time.Unix(1_700_000_000, 0)
	b.Run("FailureSuccess", func(b *testing.B) {
		m := store.NewMemory()
		_, snap, _ := m.Register(ctx, "c", set)
		op := store.Op{Circuit: "c", Settings: set, Gen: snap.Gen, Now: now}
		b.ReportAllocs()
		for b.Loop() {
			_, _ = m.Failure(ctx, op)
			_, _ = m.Success(ctx, op)
		}
	})
	b.Run("ClaimRelease", func(b *testing.B) {
		m := store.NewMemory()
		_, snap, _ := m.Register(ctx, "c", set)
		snap, _ = m.Force(ctx, store.Op{Circuit: "c", Settings: set, Gen: snap.Gen, Now: now}, store.HalfOpen)
		op := store.Op{Circuit: "c", Settings: set, Gen: snap.Gen, Now: now}
		b.ReportAllocs()
		for b.Loop() {
			_, _, _ = m.Claim(ctx, op)
			_, _ = m.Release(ctx, op)
		}
	})
}
