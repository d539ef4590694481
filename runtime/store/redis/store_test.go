package redis

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/purgatory-go/purgatory/runtime/store"
)

var testSettings = store.Settings{Threshold: 3, TTL: 10 * time.Second, Trials: 2}

// sameSnapshot checks got against want, seq shifted by base (a new Redis
// record starts at the server time) and times compared as instants.
func sameSnapshot(t *testing.T, want, got store.Snapshot, base uint64, msgAndArgs ...any) {
	t.Helper()
	assert.True(t, want.Until.Equal(got.Until), "until %v, want %v %v", got.Until, want.Until, msgAndArgs)
	want.Until, got.Until = time.Time{}, time.Time{}
	want.Seq += base
	assert.Equal(t, want, got, msgAndArgs...)
}

// TestScriptMatchesPure is the differential test of the script: random
// operation sequences go through the Lua script and through the pure
// functions of package store (the reference semantics), with random
// settings, and every reply must equal the pure result. The one
// difference: an operation from a generation later than the record's
// leaves it unchanged but gives it a newer seq (see script.lua).
func TestScriptMatchesPure(t *testing.T) {
	srv := needRedis(t)
	ctx := context.Background()
	starts := []time.Time{
		time.Unix(1_700_000_000, 999_999_999),
		time.Unix(0, 0),
		time.Unix(-3, 500), // before 1970: negative Unix nanoseconds
		{},                 // the zero time does not fit int64 nanoseconds
		time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Unix(1_700_000_000, 0),
		time.Unix(1_800_000_000, 123),
	}
	seen := map[string]int{} // transitions the sequences went through
	for i, start := range starts {
		rng := rand.New(rand.NewPCG(uint64(i), 42))
		set := store.Settings{
			Threshold: rng.IntN(4), TTL: time.Duration(1+rng.IntN(5000)) * time.Millisecond, Trials: 1 + rng.IntN(3),
			MaxTTL: time.Duration(rng.IntN(3)) * 7 * time.Second, MinCalls: rng.IntN(6),
		}
		if set.Threshold == 0 || rng.IntN(2) == 0 {
			set.FailureRate = []float64{0.5, 1, 0.3, 0.01}[rng.IntN(4)]
			set.Window = time.Duration(1+rng.IntN(20)) * 500 * time.Millisecond
		}
		s := newStore(t, srv, testPrefix())
		name := "circuit"
		inForce, got, err := s.Register(ctx, name, set)
		require.NoError(t, err)
		require.Equal(t, set, inForce)
		want := store.New()
		var w store.Window
		base := got.Seq - want.Seq
		sameSnapshot(t, want, got, base)
		now := start
		for step := range 600 {
			now = now.Add(time.Duration(rng.IntN(2000)) * time.Millisecond)
			gen := want.Gen
			switch rng.IntN(8) {
			case 0:
				gen--
			case 1:
				gen++
			}
			op := store.Op{Circuit: name, Settings: set, Gen: gen, Now: now}
			prev := want
			var what string
			var ch store.Change
			switch k := rng.IntN(14); {
			case k < 2:
				ch = store.Change{Kind: store.Failure}
			case k < 3:
				ch = store.Change{Kind: store.Failures, N: 1 + rng.IntN(4)}
				what = fmt.Sprintf("failures %d", ch.N)
			case k < 5:
				ch = store.Change{Kind: store.Success}
			case k < 7:
				ch = store.Change{Kind: store.Claim, Skew: drawSkew(rng)}
				what = fmt.Sprintf("claim skew %s", ch.Skew)
			case k < 8:
				ch = store.Change{Kind: store.Release}
			case k < 9:
				ch = store.Change{Kind: store.Expire, Skew: drawSkew(rng)}
				what = fmt.Sprintf("expire skew %s", ch.Skew)
			case k < 10:
				ch = store.Change{Kind: store.Force, To: store.State(rng.IntN(4))}
				what = "force " + ch.To.String()
			case k < 13:
				calls := rng.IntN(6)
				ch = store.Change{Kind: store.Record, N: calls, Failed: rng.IntN(calls + 2)}
				what = fmt.Sprintf("record %d/%d", ch.N, ch.Failed)
				if ns := now.UnixNano(); ns < 0 || !time.Unix(0, ns).Equal(now) { // Window.Add needs Unix nanoseconds
					_, err = s.Record(ctx, op, ch.N, ch.Failed)
					require.Error(t, err, "a time outside 1970-2262 has no window")
					continue
				}
			default:
				ch = store.Change{Kind: store.Reconcile, Base: want.Seq - uint64(rng.IntN(2))}
				ch.Want = store.Snapshot{State: store.State(rng.IntN(5)), Level: rng.IntN(3),
					Until: now.Add(time.Duration(rng.IntN(3)-1) * time.Second)}
				what = fmt.Sprintf("reconcile %v", ch.Want.State)
			}
			if what == "" {
				what = ch.Kind.String()
			}
			var wantOK, gotOK bool
			want, _, wantOK = want.Apply(set, &w, gen, now, &ch)
			if ch.Kind == store.Reconcile {
				ch.Base += base // the record's seq started at the server time
			}
			var snap store.Snapshot
			snap, gotOK, err = store.Do(ctx, s, op, ch)
			assert.Equal(t, wantOK, gotOK, "step %d %s granted", step, what)
			require.NoError(t, err, "step %d %s", step, what)
			if gen > prev.Gen && want.Seq == prev.Seq {
				// A caller ahead of the record: unchanged but for a newer seq.
				require.Greater(t, snap.Seq, prev.Seq+base, "step %d %s: a record behind its caller is re-announced", step, what)
				base = snap.Seq - want.Seq
			}
			sameSnapshot(t, want, snap, base, "start %v step %d %s gen %d", start, step, what, gen)
			if t.Failed() {
				return
			}
			if want.Gen != prev.Gen {
				seen[strings.Fields(what)[0]+" "+prev.State.String()+"->"+want.State.String()]++
			}
		}
	}
	for _, tr := range []string{"failure closed->open", "record closed->open", "failure half-open->open",
		"claim open->half-open", "claim half-open->open", "expire half-open->open", "expire open->half-open",
		"success half-open->closed", "reconcile open->closed", "reconcile closed->open"} {
		assert.Positive(t, seen[tr], "the sequences never went through %s: %v", tr, seen)
	}
}

func TestRegisterFirstWins(t *testing.T) {
	srv := needRedis(t)
	ctx := context.Background()
	prefix := testPrefix()
	a, b := newStore(t, srv, prefix), newStore(t, srv, prefix)
	set, snap, err := a.Register(ctx, "pay", testSettings)
	require.NoError(t, err)
	assert.Equal(t, testSettings, set)
	assert.Equal(t, store.Closed, snap.State)

	other := store.Settings{Threshold: 9, TTL: time.Minute, Trials: 4}
	set, snap2, err := b.Register(ctx, "pay", other)
	require.NoError(t, err)
	assert.Equal(t, testSettings, set, "the first registration wins")
	assert.Equal(t, snap, snap2, "registering again changes nothing")

	// Operations use the stored settings, not the caller's (threshold 3),
	// and say so with a *ConflictError beside a valid snapshot.
	mine := store.Settings{Threshold: 1, TTL: time.Second, Trials: 1}
	op := store.Op{Circuit: "pay", Settings: mine, Gen: snap.Gen, Now: time.Unix(100, 0)}
	var ce *ConflictError
	for range 2 {
		got, err := b.Failure(ctx, op)
		require.ErrorAs(t, err, &ce)
		assert.Equal(t, testSettings, ce.InForce)
		assert.Equal(t, mine, ce.Wanted)
		assert.Equal(t, store.Closed, got.State)
	}
	op.Settings = testSettings
	got, err := a.Failure(ctx, op)
	require.NoError(t, err, "the caller's settings are the record's: no conflict")
	assert.Equal(t, store.Open, got.State)
	assert.True(t, time.Unix(110, 0).Equal(got.Until), "open until now + the stored ttl, got %v", got.Until)
}

func TestLostRecordIsRecreated(t *testing.T) {
	srv := needRedis(t)
	ctx := context.Background()
	s := newStore(t, srv, testPrefix())
	_, snap, err := s.Register(ctx, "c", testSettings)
	require.NoError(t, err)
	op := store.Op{Circuit: "c", Settings: testSettings, Gen: snap.Gen, Now: time.Unix(5, 0)}
	snap, err = s.Force(ctx, op, store.Open)
	require.NoError(t, err)
	require.NoError(t, s.client.Del(ctx, s.Key("c")).Err())

	// A breaker still in the old generation reports a failure: the record
	// is recreated closed, newer than anything seen of the old one.
	op.Gen = snap.Gen
	got, err := s.Failure(ctx, op)
	require.NoError(t, err)
	assert.Equal(t, store.Closed, got.State)
	assert.Greater(t, got.Seq, snap.Seq)
	h, err := s.client.HGetAll(ctx, s.Key("c")).Result()
	require.NoError(t, err)
	assert.Equal(t, "3", h["threshold"], "settings come with the operation")
	assert.Equal(t, "10000000000", h["ttl"])
}

func TestKeyLayout(t *testing.T) {
	srv := needRedis(t)
	ctx := context.Background()
	prefix := "myapp" + testPrefix()
	s := newStore(t, srv, prefix)
	assert.Equal(t, prefix+"{pay ments}:state", s.Key("pay ments"))
	assert.Equal(t, prefix+"events", s.Channel())
	_, _, err := s.Register(ctx, "pay ments", testSettings)
	require.NoError(t, err)
	_, err = s.Force(ctx, store.Op{Circuit: "pay ments", Settings: testSettings, Gen: 1, Now: time.Unix(1, 5)}, store.Open)
	require.NoError(t, err)
	h, err := s.client.HGetAll(ctx, prefix+"{pay ments}:state").Result()
	require.NoError(t, err)
	assert.Equal(t, "open", h["state"])
	assert.Equal(t, "2", h["gen"])
	assert.Equal(t, "11000000005", h["until"])
	assert.Equal(t, "10000000000", h["ttl"])
	assert.Equal(t, DefaultPrefix, New(s.client).prefix)
}

func TestCorruptRecord(t *testing.T) {
	srv := needRedis(t)
	ctx := context.Background()
	s := newStore(t, srv, testPrefix())
	op := store.Op{Circuit: "c", Settings: testSettings, Gen: 1, Now: time.Unix(7, 0)}
	garbage := map[string]func() error{
		"a string": func() error { return s.client.Set(ctx, s.Key("c"), "garbage", 0).Err() }, // SET replaces the hash
		"a list": func() error {
			if err := s.client.Del(ctx, s.Key("c")).Err(); err != nil {
				return err
			}
			return s.client.RPush(ctx, s.Key("c"), "x").Err()
		},
		"a bad state":      func() error { return s.client.HSet(ctx, s.Key("c"), "state", "banana").Err() },
		"a bad counter":    func() error { return s.client.HSet(ctx, s.Key("c"), "gen", "1e5").Err() },
		"a huge counter":   func() error { return s.client.HSet(ctx, s.Key("c"), "seq", "99999999999999999999").Err() },
		"a bad time":       func() error { return s.client.HSet(ctx, s.Key("c"), "state", "open", "until", "soon").Err() },
		"a huge threshold": func() error { return s.client.HSet(ctx, s.Key("c"), "threshold", "1000000000").Err() },
		"a year-long ttl":  func() error { return s.client.HSet(ctx, s.Key("c"), "ttl", "31536000000000000").Err() },
		"a rate above 1":   func() error { return s.client.HSet(ctx, s.Key("c"), "rate", "1.5").Err() },
		"a NaN rate":       func() error { return s.client.HSet(ctx, s.Key("c"), "rate", "nan").Err() },
		"a short window":   func() error { return s.client.HSet(ctx, s.Key("c"), "wcalls", "1 2 3").Err() },
		"a missing field":  func() error { return s.client.HDel(ctx, s.Key("c"), "trials").Err() },
		"a zero ttl":       func() error { return s.client.HSet(ctx, s.Key("c"), "ttl", "0").Err() },
	}
	for what, spoil := range garbage {
		require.NoError(t, s.client.Del(ctx, s.Key("c")).Err())
		_, _, err := s.Register(ctx, "c", testSettings)
		require.NoError(t, err)
		require.NoError(t, spoil(), what)

		_, ok, err := s.get(ctx, "c")
		require.NoError(t, err, what)
		assert.False(t, ok, "%s: a corrupt record is not handed to watchers", what)

		snap, err := s.Failure(ctx, op)
		var ce *CorruptError
		require.ErrorAs(t, err, &ce, what)
		assert.Equal(t, s.Key("c"), ce.Key)
		assert.Contains(t, err.Error(), s.Key("c"), "the error names the key")
		assert.Equal(t, store.Closed, snap.State, what)
		assert.Equal(t, 1, snap.Failures, "%s: the fresh record took the failure", what)

		snap, err = s.Failure(ctx, op)
		require.NoError(t, err, "%s: the record was repaired", what)
		assert.Equal(t, 2, snap.Failures, what)
	}
}

func TestBadSettingsAreRejected(t *testing.T) {
	srv := needRedis(t)
	s := newStore(t, srv, testPrefix())
	_, _, err := s.Register(context.Background(), "c", store.Settings{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "bad settings")
	_, err = s.Force(context.Background(), store.Op{Circuit: "c", Settings: testSettings}, store.State(7))
	require.Error(t, err)
}

func TestNanosRoundTrip(t *testing.T) {
	for _, tm := range []time.Time{
		{}, time.Unix(0, 0), time.Unix(0, 1), time.Unix(-1, 0), time.Unix(-1, 1), time.Unix(-2, 999_999_999),
		time.Unix(1_700_000_000, 5), time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC),
	} {
		s := formatNanos(tm)
		got, err := parseNanos(s)
		require.NoError(t, err, s)
		assert.True(t, tm.Equal(got), "%v -> %s -> %v", tm, s, got)
	}
	assert.Equal(t, "-1", formatNanos(time.Unix(-1, 999_999_999)))
	assert.Equal(t, "1000000005", formatNanos(time.Unix(1, 5)))
	for _, bad := range []string{"", "-", "1.5", "x", "1234567890123456789012"} {
		_, err := parseNanos(bad)
		assert.Error(t, err, bad)
	}
}

func TestParseMessage(t *testing.T) {
	name, snap, ok := parseMessage("2 open 4 17 0 0 0 1000000005 2 0 0 pay ments\x00x")
	require.True(t, ok)
	assert.Equal(t, "pay ments\x00x", name)
	assert.Equal(t, store.Snapshot{State: store.Open, Gen: 4, Seq: 17, Until: time.Unix(1, 5), Level: 2}, snap)
	for _, bad := range []string{"", "hello", "1 open 4 17 0 0 0 1 c", "2 shut 4 17 0 0 0 1 0 0 0 c",
		"2 open x 17 0 0 0 1 0 0 0 c", "2 open 4 17 0 0 0 soon 0 0 0 c", "2 open 4 9223372036854775807 0 0 0 1 0 0 0 c"} {
		_, _, ok := parseMessage(bad)
		assert.False(t, ok, bad)
	}
}

// drawSkew draws a Claim's or Expire's clock skew: none, up to a few
// seconds (comparable to the steps), or beyond the longest the store takes.
func drawSkew(r *rand.Rand) time.Duration {
	switch r.IntN(8) {
	case 0, 1, 2:
		return 0
	case 3:
		return store.MaxPeriod + time.Duration(r.IntN(2))*time.Hour
	}
	return time.Duration(r.IntN(3000)) * time.Millisecond
}
