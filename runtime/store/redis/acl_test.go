package redis

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/purgatory-go/purgatory/runtime/store"
	"github.com/purgatory-go/purgatory/runtime/store/storetest"
)

// Permissions, error wording, idle expiry and records changed behind the store's back.

// aclUser creates an ACL user on srv with the given rules (after "on
// >pw"), deleted at the end of the test, and returns a client logged in
// as it.
func aclUser(t *testing.T, srv *server, name string, rules ...string) *goredis.Client {
	t.Helper()
	ctx := context.Background()
	admin := newClient(t, srv)
	args := []any{"ACL", "SETUSER", name, "reset", "on", ">pw"}
	for _, r := range rules {
		args = append(args, r)
	}
	require.NoError(t, admin.Do(ctx, args...).Err())
	t.Cleanup(func() { _ = admin.Do(context.Background(), "ACL", "DELUSER", name).Err() })
	c := goredis.NewClient(&goredis.Options{Addr: srv.addr(), Username: name, Password: "pw", ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// minimalACL is the ACL the README gives, for a prefix.
func minimalACL(prefix string) []string {
	return append([]string{"~" + prefix + "*", "&" + prefix + "events"}, strings.Fields(aclCommands)...)
}

// TestACL: the README's minimal ACL is enough for the whole conformance
// suite; a user without PUBLISH (no channel rights, the Redis 7 default)
// or without SUBSCRIBE gets a clear error from Ping, and an operation
// without PUBLISH writes nothing.
func TestACL(t *testing.T) {
	srv := needRedis(t)
	ctx := context.Background()
	t.Run("Minimal", func(t *testing.T) {
		prefix := testPrefix()
		c := aclUser(t, srv, "purgatory-min", minimalACL(prefix)...)
		s := New(c, WithPrefix(prefix), WithTimeout(time.Second))
		t.Cleanup(func() { _ = s.Close() })
		require.NoError(t, s.Ping(ctx))
		for _, doc := range []string{"redis.go", "../../../README.md"} {
			b, err := os.ReadFile(doc)
			require.NoError(t, err)
			assert.Contains(t, string(b), "&purgatory:events "+aclCommands, "%s gives the minimal ACL", doc)
		}
		// The conformance suite, as a user with those commands on the
		// keys and channels of its prefixes.
		rules := append([]string{"~aclmin*", "&aclmin*"}, strings.Fields(aclCommands)...)
		cc := aclUser(t, srv, "purgatory-conf", rules...)
		storetest.Run(t, func(t *testing.T) store.Store {
			s := New(cc, WithPrefix("aclmin"+testPrefix()), WithTimeout(time.Second))
			t.Cleanup(func() { _ = s.Close() })
			return s
		})
	})
	t.Run("NoPublish", func(t *testing.T) {
		prefix := testPrefix()
		rules := append([]string{"~" + prefix + "*", "resetchannels"}, strings.Fields(aclCommands)...)
		c := aclUser(t, srv, "purgatory-nopub", rules...)
		s := New(c, WithPrefix(prefix), WithTimeout(time.Second))
		t.Cleanup(func() { _ = s.Close() })
		err := s.Ping(ctx)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "NOPERM")
		assert.Contains(t, err.Error(), "publish")

		admin := newStore(t, srv, prefix)
		_, snap, err := admin.Register(ctx, "c", testSettings)
		require.NoError(t, err)
		_, err = s.Failure(ctx, store.Op{Circuit: "c", Settings: testSettings, Gen: snap.Gen, Now: time.Now()})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "NOPERM")
		_, after, err := admin.Register(ctx, "c", testSettings)
		require.NoError(t, err)
		assert.Equal(t, snap, after, "nothing was written: no half-applied failure")
	})
	t.Run("NoSubscribe", func(t *testing.T) {
		prefix := testPrefix()
		rules := append(minimalACL(prefix), "-subscribe")
		c := aclUser(t, srv, "purgatory-nosub", rules...)
		errs := make(chan error, 8)
		s := New(c, WithPrefix(prefix), WithTimeout(time.Second), WithErrorHandler(func(err error) {
			select {
			case errs <- err:
			default:
			}
		}))
		t.Cleanup(func() { _ = s.Close() })
		err := s.Ping(ctx)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "subscribe")
		assert.Contains(t, err.Error(), "NOPERM")
		defer s.Watch("c", func(store.Snapshot) {})()
		select {
		case err := <-errs:
			assert.Contains(t, err.Error(), "NOPERM", "the subscription failure is reported")
		case <-time.After(30 * time.Second):
			require.FailNow(t, "no error reported for the failed subscription")
		}
	})
	t.Run("NoScript", func(t *testing.T) {
		prefix := testPrefix()
		c := aclUser(t, srv, "purgatory-noeval", "~"+prefix+"*", "&"+prefix+"events", "+ping", "+hello", "+client")
		s := New(c, WithPrefix(prefix), WithTimeout(time.Second))
		t.Cleanup(func() { _ = s.Close() })
		err := s.Ping(ctx)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "NOPERM")
	})
}

// TestErrorsSayWhatFailed: the store errors name the failure go-redis
// knows: connection refused, NOAUTH.
func TestErrorsSayWhatFailed(t *testing.T) {
	needRedis(t)
	ctx := context.Background()
	port, err := freePort()
	require.NoError(t, err)
	c := goredis.NewClient(&goredis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port), ContextTimeoutEnabled: true, MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	s := New(c, WithTimeout(time.Second))
	_, err = s.Failure(ctx, store.Op{Circuit: "c", Settings: testSettings, Gen: 1, Now: time.Now()})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "connection refused")
	assert.Contains(t, err.Error(), "failure")

	locked, err := startServer(0, "--requirepass", "secret")
	require.NoError(t, err)
	t.Cleanup(locked.stop)
	c2 := goredis.NewClient(&goredis.Options{Addr: locked.addr(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = c2.Close() })
	err = New(c2, WithTimeout(time.Second)).Ping(ctx) // not the default 50 ms: on a loaded machine, a timeout instead of NOAUTH
	require.Error(t, err)
	assert.Contains(t, err.Error(), "NOAUTH")
}

// TestIdleExpiry: every write refreshes the record's idle expiry: a day,
// or ten times the circuit's longest period; an isolated circuit never
// expires.
func TestIdleExpiry(t *testing.T) {
	srv := needRedis(t)
	ctx := context.Background()
	s := newStore(t, srv, testPrefix())
	pttl := func(name string) time.Duration {
		d, err := s.client.PTTL(ctx, s.Key(name)).Result()
		require.NoError(t, err)
		return d
	}
	_, _, err := s.Register(ctx, "day", testSettings)
	require.NoError(t, err)
	assert.InDelta(t, 24*time.Hour, pttl("day"), float64(time.Minute))
	long := testSettings
	long.MaxTTL = 5 * 24 * time.Hour
	_, _, err = s.Register(ctx, "long", long)
	require.NoError(t, err)
	assert.InDelta(t, 50*24*time.Hour, pttl("long"), float64(time.Minute))
	op := store.Op{Circuit: "day", Settings: testSettings, Now: time.Now()}
	_, err = s.Force(ctx, op, store.Isolated)
	require.NoError(t, err)
	assert.Equal(t, time.Duration(-1), pttl("day"), "isolated: no expiry")
	_, err = s.Force(ctx, op, store.Closed)
	require.NoError(t, err)
	assert.InDelta(t, 24*time.Hour, pttl("day"), float64(time.Minute))
}

// TestSettingsChangedInRecord: settings written into a record are not
// silently obeyed: out of range they make the record corrupt (replaced by
// the caller's), in range the caller gets a *ConflictError naming both.
func TestSettingsChangedInRecord(t *testing.T) {
	srv := needRedis(t)
	ctx := context.Background()
	s := newStore(t, srv, testPrefix())
	_, snap, err := s.Register(ctx, "c", testSettings)
	require.NoError(t, err)
	op := store.Op{Circuit: "c", Settings: testSettings, Gen: snap.Gen, Now: time.Now()}
	require.NoError(t, s.client.HSet(ctx, s.Key("c"), "threshold", "1000000000").Err())
	got, err := s.Failure(ctx, op)
	var ce *CorruptError
	require.ErrorAs(t, err, &ce)
	assert.Contains(t, ce.Reason, "threshold")
	assert.Equal(t, 1, got.Failures, "the fresh record took the failure")
	require.NoError(t, s.client.HSet(ctx, s.Key("c"), "threshold", "7").Err())
	op.Gen = got.Gen
	got, err = s.Failure(ctx, op)
	var cf *ConflictError
	require.ErrorAs(t, err, &cf)
	assert.Equal(t, 7, cf.InForce.Threshold)
	assert.Equal(t, testSettings, cf.Wanted)
	assert.Equal(t, 2, got.Failures, "the snapshot beside a conflict is valid")
	set, _, err := s.Register(ctx, "c", testSettings)
	require.NoError(t, err)
	assert.Equal(t, 7, set.Threshold, "Register returns the settings in force")
}
