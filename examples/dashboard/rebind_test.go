package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// startDashboard runs the demo on a free loopback port and returns its URL.
func startDashboard(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := run(ctx, pw, "127.0.0.1:0")
		pw.CloseWithError(err)
		done <- err
	}()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	lines := bufio.NewScanner(pr)
	require.True(t, lines.Scan(), "no output")
	base := lines.Text()
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	return base
}

// TestDNSRebinding sends what a page on another site sends once its name
// was rebound to 127.0.0.1: the request comes from a loopback peer, but its
// Host (and Origin) name the attacker's site and, the browser thinking it
// same-origin, Sec-Fetch-Site says so. The dashboard must refuse it, reads
// included, and still serve requests that name the address it serves.
func TestDNSRebinding(t *testing.T) {
	base := startDashboard(t)
	port := base[strings.LastIndex(base, ":")+1 : len(base)-1]
	evil := "rebind.attacker.example:" + port

	send := func(method, path, host, origin, site string) int {
		t.Helper()
		req, err := http.NewRequest(method, base+path, nil)
		require.NoError(t, err)
		req.Host = host
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		if site != "" {
			req.Header.Set("Sec-Fetch-Site", site)
		}
		req.Header.Set("Accept", "application/json")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}

	// The rebound page's control POST and its reads.
	assert.Equal(t, http.StatusForbidden, send(http.MethodPost, "circuits/shipping/isolate", evil, "http://"+evil, "same-origin"))
	assert.Equal(t, http.StatusForbidden, send(http.MethodPost, "circuits/shipping/isolate", evil, "", ""))
	assert.Equal(t, http.StatusForbidden, send(http.MethodGet, "circuits", evil, "", "same-origin"))
	assert.Equal(t, http.StatusForbidden, send(http.MethodGet, "", evil, "", "none"))
	assert.Equal(t, http.StatusForbidden, send(http.MethodGet, "metrics", evil, "", ""))
	// Right Host, foreign Origin: a cross-origin POST is refused too.
	assert.Equal(t, http.StatusForbidden, send(http.MethodPost, "circuits/shipping/isolate", strings.TrimPrefix(base[:len(base)-1], "http://"), "http://"+evil, ""))

	// The operator's own requests, by the printed address or localhost.
	host := strings.TrimPrefix(base[:len(base)-1], "http://")
	assert.Equal(t, http.StatusOK, send(http.MethodGet, "circuits", host, "", "none"))
	assert.Equal(t, http.StatusOK, send(http.MethodGet, "circuits", "localhost:"+port, "", ""))
	assert.Equal(t, http.StatusOK, send(http.MethodPost, "circuits/shipping/isolate", host, base[:len(base)-1], "same-origin"))
	assert.Equal(t, http.StatusOK, send(http.MethodPost, "circuits/shipping/close", "localhost:"+port, "", ""))
}
