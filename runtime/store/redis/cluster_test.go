package redis

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	purgatory "github.com/purgatory-go/purgatory/runtime"
	"github.com/purgatory-go/purgatory/runtime/store"
	"github.com/purgatory-go/purgatory/runtime/store/storetest"
)

// clusterPorts finds n ports p that are free along with their cluster bus
// ports p+10000.
func clusterPorts(t *testing.T, n int) []int {
	var ports []int
	for len(ports) < n {
		p := 20000 + rand.IntN(30000)
		ok := true
		for _, q := range []int{p, p + 10000} {
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(q))
			if err != nil {
				ok = false
				break
			}
			_ = l.Close()
		}
		if ok {
			ports = append(ports, p)
		}
	}
	return ports
}

// startCluster starts a three-master Redis Cluster on loopback and returns
// its addresses once every node reports cluster_state:ok.
func startCluster(t *testing.T) []string {
	needRedis(t)
	ctx := context.Background()
	ports := clusterPorts(t, 3)
	addrs := make([]string, len(ports))
	nodes := make([]*goredis.Client, len(ports))
	for i, p := range ports {
		srv, err := startServer(p, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--dir", t.TempDir())
		require.NoError(t, err)
		t.Cleanup(srv.stop)
		addrs[i] = srv.addr()
		nodes[i] = goredis.NewClient(&goredis.Options{Addr: addrs[i]})
		t.Cleanup(func() { _ = nodes[i].Close() })
	}
	const slots = 16384
	for i, n := range nodes {
		lo, hi := i*slots/len(nodes), (i+1)*slots/len(nodes)-1
		require.NoError(t, n.ClusterAddSlotsRange(ctx, lo, hi).Err())
		if i > 0 {
			require.NoError(t, n.ClusterMeet(ctx, "127.0.0.1", strconv.Itoa(ports[0])).Err())
		}
	}
	require.Eventually(t, func() bool {
		for _, n := range nodes {
			info, err := n.ClusterInfo(ctx).Result()
			if err != nil || !strings.Contains(info, "cluster_state:ok") {
				return false
			}
		}
		return true
	}, 30*time.Second, 50*time.Millisecond, "the cluster did not come up")
	return addrs
}

func clusterStore(t *testing.T, addrs []string, prefix string) *Store {
	c := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: addrs, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = c.Close() })
	s := New(c, WithPrefix(prefix), WithTimeout(time.Second))
	require.True(t, s.ctxAware)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestCluster runs the conformance suite on a three-node Redis Cluster and
// shares circuits, whose keys sit on different nodes, between two
// factories there.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster")
	}
	addrs := startCluster(t)
	t.Run("Conformance", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) store.Store { return clusterStore(t, addrs, testPrefix()) })
	})
	t.Run("Shared", func(t *testing.T) {
		prefix := testPrefix()
		fa := purgatory.NewFactory(purgatory.WithStore(clusterStore(t, addrs, prefix)))
		fb := purgatory.NewFactory(purgatory.WithStore(clusterStore(t, addrs, prefix)))
		ctx := context.Background()
		cfg := purgatory.Config{Threshold: 2, TTL: time.Hour}
		nodesUsed := map[string]bool{}
		probe := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: addrs})
		defer probe.Close()
		for i := range 12 {
			name := fmt.Sprintf("circuit-%d", i)
			a, b := fa.Breaker(name, cfg), fb.Breaker(name, cfg)
			for range 2 {
				require.ErrorIs(t, a.Do(ctx, fail), errBoom)
			}
			waitFor(t, func() bool { return a.State() == purgatory.Open }, "the trip")
			require.Eventually(t, func() bool { return errors.Is(b.Do(ctx, succeed), purgatory.ErrOpen) },
				10*time.Second, time.Millisecond, "%s: the trip reaches the other factory", name)
			slot, err := probe.ClusterKeySlot(ctx, prefix+"{"+name+"}:state").Result()
			require.NoError(t, err)
			nodesUsed[strconv.Itoa(int(slot)*3/16384)] = true
		}
		assert.Len(t, nodesUsed, 3, "the circuits' keys are spread over every node")
	})
}
