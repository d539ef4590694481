package runtime_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	purgatory "github.com/purgatory-go/purgatory/runtime"
	"github.com/purgatory-go/purgatory/runtime/clocktest"
	"github.com/purgatory-go/purgatory/runtime/store"
)

// TestMemoryDropsRemovedCircuits (issue 16, item 14): per-key circuits
// removed while open, or left open when their factory closes, are dropped
// by the memory store; a name registered again starts a fresh circuit whose
// Seq continues the order of the dropped one.
func TestMemoryDropsRemovedCircuits(t *testing.T) {
	clk := clocktest.New(time.Unix(1_700_000_000, 0))
	m := store.NewMemory()
	cfg := purgatory.Config{Threshold: 1, TTL: time.Hour}
	f := purgatory.NewFactory(purgatory.WithStore(m), purgatory.WithClock(clk))
	for i := range 1000 {
		f.Breaker(fmt.Sprintf("key/%d", i), cfg).Open()
	}
	require.Equal(t, 1000, m.Len())
	for i := range 1000 {
		require.True(t, f.Remove(fmt.Sprintf("key/%d", i)))
	}
	assert.Zero(t, m.Len(), "removed circuits are still held by the store")

	g := purgatory.NewFactory(purgatory.WithStore(m), purgatory.WithClock(clk))
	for i := range 100 {
		g.Breaker(fmt.Sprintf("key/%d", i), cfg).Open()
	}
	require.NoError(t, g.Close())
	assert.Zero(t, m.Len(), "a closed factory's circuits are still held by the store")
}
