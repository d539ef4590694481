package redis

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/purgatory-go/purgatory/runtime/store"
)

// TestRandomGarbage writes random values into random fields of a circuit's
// hash and runs random operations on it: every answer is a snapshot or a
// *CorruptError, and afterwards the record is readable again.
func TestRandomGarbage(t *testing.T) {
	srv := needRedis(t)
	ctx := context.Background()
	s := newStore(t, srv, testPrefix())
	rng := rand.New(rand.NewPCG(7, 7))
	fields := []string{"state", "gen", "seq", "failures", "claimed", "succeeded", "open_until", "threshold", "ttl", "trials", "extra"}
	values := []string{"", "0", "1", "-1", "2", "open", "closed", "half-open", "1.5", "1e3", " 1", "0x10", "nan", "inf",
		"9007199254740991", "9007199254740993", "99999999999999999999", "-99999999999999999999", "9223372036854775807",
		"-9223372036854775808", "999999999999999999999", "é", "\x00", "1 2"}
	key := s.Key("g")
	corrupt := 0
	for i := range 300 {
		if rng.IntN(10) == 0 {
			require.NoError(t, s.client.Del(ctx, key).Err())
		}
		_, _, err := s.Register(ctx, "g", testSettings)
		require.True(t, err == nil || isCorrupt(err), "iteration %d: register: %v", i, err)
		for range 1 + rng.IntN(3) {
			require.NoError(t, s.client.HSet(ctx, key, fields[rng.IntN(len(fields))], values[rng.IntN(len(values))]).Err())
		}
		op := store.Op{Circuit: "g", Settings: testSettings, Gen: uint64(rng.IntN(4)), Now: time.Unix(int64(rng.IntN(100)), 0)}
		switch rng.IntN(7) {
		case 0:
			_, err = s.Failure(ctx, op)
		case 1:
			_, err = s.Success(ctx, op)
		case 2:
			_, _, err = s.Claim(ctx, op)
		case 3:
			_, err = s.Release(ctx, op)
		case 4:
			_, err = s.Expire(ctx, op)
		case 5:
			_, err = s.Force(ctx, op, store.State(rng.IntN(3)))
		default:
			_, _, err = s.Register(ctx, "g", testSettings)
		}
		if err != nil {
			require.True(t, isCorrupt(err), "iteration %d: %v", i, err)
			corrupt++
		}
		_, ok, err := s.get(ctx, "g")
		require.NoError(t, err)
		assert.True(t, ok, "iteration %d: the record is readable after any operation", i)
	}
	assert.Positive(t, corrupt, "some garbage must have been detected")
}

// isCorrupt reports a *CorruptError, or a *ConflictError: garbage that is
// in range is a record with other settings.
func isCorrupt(err error) bool {
	var ce *CorruptError
	var cf *ConflictError
	return errors.As(err, &ce) || errors.As(err, &cf)
}

func FuzzParseMessage(f *testing.F) {
	for _, s := range []string{"2 open 4 17 0 0 0 1000000005 0 0 0 pay ments", "2 closed 1 1 0 0 0 0 0 0 0 c", "", "2", "2 half-open 1 1 1 1 1 -5 1 1 1 x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, payload string) {
		name, snap, ok := parseMessage(payload)
		if !ok {
			return
		}
		if (snap.State == store.Closed || snap.State == store.Isolated) && !snap.Until.IsZero() {
			t.Fatalf("%q: until outside open and half-open", payload)
		}
		_ = name
	})
}

func FuzzParseNanos(f *testing.F) {
	for _, s := range []string{"0", "-1", "1000000005", "-62135596800000000000", "x", "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		tm, err := parseNanos(v)
		if err != nil {
			return
		}
		back, err := parseNanos(formatNanos(tm))
		if err != nil || !back.Equal(tm) {
			t.Fatalf("%q -> %v -> %q -> %v, %v", v, tm, formatNanos(tm), back, err)
		}
	})
}
