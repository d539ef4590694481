package redis

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/purgatory-go/purgatory/runtime/store"
)

var leaseSettings = store.Settings{Threshold: 1, TTL: 10 * time.Second, Trials: 1, MaxTTL: time.Minute}

// TestTrialHolderKilled: a process that holds the only trial slot is
// killed with SIGKILL. Its claim is a lease: when the lease runs out, the
// next claim re-opens the circuit one backoff level up, and the half-open
// period after that grants the slot again.
func TestTrialHolderKilled(t *testing.T) {
	srv := needRedis(t)
	ctx := context.Background()
	prefix := testPrefix()
	s := newStore(t, srv, prefix)
	t0 := time.Unix(1_700_000_000, 0)
	_, snap, err := s.Register(ctx, "trial", leaseSettings)
	require.NoError(t, err)
	opened, err := s.Failure(ctx, store.Op{Circuit: "trial", Settings: leaseSettings, Gen: snap.Gen, Now: t0})
	require.NoError(t, err)
	require.Equal(t, store.Open, opened.State)

	// The child claims the trial at the end of the open period, says so,
	// and hangs until it is killed.
	claimAt := opened.Until
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperTrialHolder$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"=trial", "PURGATORY_REDIS_ADDR="+srv.addr(), "PURGATORY_REDIS_PREFIX="+prefix,
		"PURGATORY_GEN="+strconv.FormatUint(opened.Gen, 10), "PURGATORY_NOW="+formatNanos(claimAt))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err, "the child exited before claiming")
	require.Equal(t, "claimed\n", line)
	require.NoError(t, cmd.Process.Kill()) // SIGKILL: no release, no result
	_ = cmd.Wait()

	op := func(at time.Time, gen uint64) store.Op {
		return store.Op{Circuit: "trial", Settings: leaseSettings, Gen: gen, Now: at}
	}
	_, held, err := s.Register(ctx, "trial", leaseSettings)
	require.NoError(t, err)
	require.Equal(t, store.HalfOpen, held.State)
	require.Equal(t, 1, held.Claimed, "the dead process's claim is in the record")
	assert.True(t, held.Until.Equal(claimAt.Add(leaseSettings.TTL)), "the lease ends a TTL after the claim")

	got, ok, err := s.Claim(ctx, op(held.Until.Add(-time.Nanosecond), held.Gen))
	require.NoError(t, err)
	assert.False(t, ok, "the slot is taken until the lease ends")
	assert.Equal(t, store.HalfOpen, got.State)

	got, ok, err = s.Claim(ctx, op(held.Until, held.Gen))
	require.NoError(t, err)
	assert.False(t, ok)
	require.Equal(t, store.Open, got.State, "the lease ran out: a failed trial")
	assert.Equal(t, 1, got.Level)
	assert.True(t, got.Until.Equal(held.Until.Add(2*leaseSettings.TTL)), "one backoff level up")

	got, ok, err = s.Claim(ctx, op(got.Until, got.Gen))
	require.NoError(t, err)
	assert.True(t, ok, "the next half-open period grants the slot")
	got, err = s.Success(ctx, op(got.Until, got.Gen))
	require.NoError(t, err)
	assert.Equal(t, store.Closed, got.State)
}

// TestHelperTrialHolder is the child of TestTrialHolderKilled; it does
// nothing in a normal run.
func TestHelperTrialHolder(t *testing.T) {
	if os.Getenv(helperEnv) != "trial" {
		t.Skip("the child process of TestTrialHolderKilled")
	}
	c := goredis.NewClient(&goredis.Options{Addr: os.Getenv("PURGATORY_REDIS_ADDR"), ContextTimeoutEnabled: true})
	s := New(c, WithPrefix(os.Getenv("PURGATORY_REDIS_PREFIX")), WithTimeout(5*time.Second))
	gen, err := strconv.ParseUint(os.Getenv("PURGATORY_GEN"), 10, 64)
	require.NoError(t, err)
	now, err := parseNanos(os.Getenv("PURGATORY_NOW"))
	require.NoError(t, err)
	_, ok, err := s.Claim(context.Background(), store.Op{Circuit: "trial", Settings: leaseSettings, Gen: gen, Now: now})
	require.NoError(t, err)
	require.True(t, ok)
	fmt.Println("claimed")
	select {} // the trial call hangs until the process is killed
}

// TestRestoreOlderRDB: Redis restarts from an RDB file saved while a trial
// slot was claimed, older than what the watchers saw. The watchers adopt
// the restored record (its Seq is raised past theirs), and the trial lease
// frees the claim nobody will report.
func TestRestoreOlderRDB(t *testing.T) {
	needRedis(t)
	ctx := context.Background()
	dir := t.TempDir()
	srv, err := startServer(0, "--dir", dir, "--dbfilename", "dump.rdb")
	require.NoError(t, err)
	t.Cleanup(func() { srv.stop() })
	prefix := testPrefix()
	a, b := newStore(t, srv, prefix), newStore(t, srv, prefix)
	t0 := time.Unix(1_700_000_000, 0)
	op := func(at time.Time, gen uint64) store.Op {
		return store.Op{Circuit: "rdb", Settings: leaseSettings, Gen: gen, Now: at}
	}
	_, snap, err := a.Register(ctx, "rdb", leaseSettings)
	require.NoError(t, err)
	var rec recorder
	defer b.Watch("rdb", rec.add)()
	waitSubscribed(t, srv, prefix, 1)
	opened, err := a.Failure(ctx, op(t0, snap.Gen))
	require.NoError(t, err)
	claimed, ok, err := a.Claim(ctx, op(opened.Until, opened.Gen))
	require.NoError(t, err)
	require.True(t, ok)
	admin := goredis.NewClient(&goredis.Options{Addr: srv.addr()})
	require.NoError(t, admin.Save(ctx).Err())
	_ = admin.Close()

	// Life goes on after the save: the trial succeeds, the circuit trips
	// again. The watcher sees it all.
	closed, err := a.Success(ctx, op(opened.Until, claimed.Gen))
	require.NoError(t, err)
	require.Equal(t, store.Closed, closed.State)
	later, err := a.Failure(ctx, op(opened.Until, closed.Gen))
	require.NoError(t, err)
	rec.waitSeq(t, later.Seq, "the watcher saw the history after the save")

	srv.stop()
	srv, err = startServer(srv.port, "--dir", dir, "--dbfilename", "dump.rdb")
	require.NoError(t, err)
	t.Cleanup(func() { srv.stop() })

	// The watcher resyncs: the restored record is older than what it saw,
	// so the store raises its Seq and hands it over.
	rec.waitSeq(t, later.Seq+1, "the restored record is delivered with a Seq past the lost history")
	var newest store.Snapshot
	for _, s := range rec.list() {
		if s.Seq > newest.Seq {
			newest = s
		}
	}
	assert.Equal(t, store.HalfOpen, newest.State, "the restored record: half-open")
	assert.Equal(t, claimed.Gen, newest.Gen)
	assert.Equal(t, 1, newest.Claimed, "with the claim of the saved moment")

	// Nobody will report that trial: its lease frees the slot.
	got, ok, err := a.Claim(ctx, op(newest.Until, newest.Gen))
	require.NoError(t, err)
	assert.False(t, ok)
	require.Equal(t, store.Open, got.State, "the lease ran out: re-opened")
	got, ok, err = a.Claim(ctx, op(got.Until, got.Gen))
	require.NoError(t, err)
	assert.True(t, ok, "and the next half-open period grants the slot")
}
