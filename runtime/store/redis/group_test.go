package redis

import (
	"context"
	"strings"
	"testing"
	"time"

	purgatory "github.com/purgatory-go/purgatory/runtime"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Keyed circuits with odd keys — '/', spaces, braces (the key layout's
// hash tag), the empty key, a 10 KB key — are shared through Redis like
// any other: a trip in one process rejects in the other, each key on its
// own record.
func TestGroupKeysShared(t *testing.T) {
	srv := needRedis(t)
	prefix := testPrefix()
	fa, fb, _, _ := twoFactories(t, srv, prefix, nil)
	cfg := purgatory.Config{Threshold: 1, TTL: time.Minute}
	ga, gb := fa.Group("tenants", cfg), fb.Group("tenants", cfg)
	keys := []string{"a/b", "with space", "{tag}", "}{", "x}", "", strings.Repeat("k", 10<<10)}
	for _, k := range keys {
		ga.Breaker(k)
		gb.Breaker(k) // b watches every key's circuit
	}
	waitSubscribed(t, srv, prefix, 2)
	ctx := context.Background()
	client := newClient(t, srv)
	for _, k := range keys {
		a := ga.Breaker(k)
		require.ErrorIs(t, a.Do(ctx, fail), errBoom)
		waitFor(t, func() bool { return a.State() == purgatory.Open }, "the trip reaches Redis off the caller's path")
		require.Eventually(t, func() bool { return gb.Breaker(k).State() == purgatory.Open },
			10*time.Second, time.Millisecond, "key %.20q", k)
		n, err := client.Exists(ctx, prefix+"{"+a.Name()+"}:state").Result()
		require.NoError(t, err)
		assert.EqualValues(t, 1, n, "key %.20q: record at its circuit's name", k)
	}
	for _, k := range []string{"other", "a/c"} {
		assert.NoError(t, gb.Breaker(k).Do(ctx, succeed), "key %q is closed", k)
	}
}
