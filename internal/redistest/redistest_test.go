package redistest

import (
	"net"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/purgatory-go/purgatory/internal/testbin"
)

// TestStartOnTakenPort: a server whose port was taken by another process
// is not mistaken for the one that listens there: Start says so, instead
// of handing out the other process's port.
func TestStartOnTakenPort(t *testing.T) {
	testbin.Need(t, "redis-server", "redis-server")
	other, err := Start(0)
	require.NoError(t, err)
	t.Cleanup(other.Kill)
	_, err = Start(other.Port)
	require.ErrorContains(t, err, "exited at start")

	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	_, err = Start(l.Addr().(*net.TCPAddr).Port)
	require.ErrorContains(t, err, "exited at start")
}
