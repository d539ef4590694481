package main

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/purgatory-go/purgatory/observe/status"
)

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, url)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

// TestDashboard runs the demo on a free loopback port and checks it end to
// end: the URL on its first line, the page, the JSON, the metrics, and an
// operator's control.
func TestDashboard(t *testing.T) {
	base := startDashboard(t)
	require.Regexp(t, regexp.MustCompile(`^http://127\.0\.0\.1:[0-9]+/$`), base)

	page := get(t, base)
	for _, name := range []string{"inventory", "shipping", "recommendations"} {
		assert.Contains(t, page, `<tr data-circuit="`+name+`" data-state=`)
	}

	// Every series is there from the start.
	metrics := get(t, base+"metrics")
	for _, want := range []string{
		`purgatory_circuit_state{circuit="inventory",state="closed"}`,
		`purgatory_circuit_state{circuit="shipping",state="open"}`,
		`purgatory_calls_total{circuit="recommendations",outcome="rejected"}`,
		`purgatory_transitions_total{circuit="shipping",from="closed",to="open"}`,
		`purgatory_circuit_consecutive_failures{circuit="inventory"}`,
		`purgatory_store_errors_total{circuit="inventory"}`,
	} {
		assert.Contains(t, metrics, want)
	}

	// Traffic flows: the counts grow.
	require.Eventually(t, func() bool {
		var l status.List
		if err := json.Unmarshal([]byte(get(t, base+"circuits")), &l); err != nil || len(l.Circuits) != 3 {
			return false
		}
		for _, c := range l.Circuits {
			if c.Counts.Success+c.Counts.Failure+c.Counts.Rejected == 0 {
				return false
			}
		}
		return true
	}, 20*time.Second, 50*time.Millisecond)
	require.Eventually(t, func() bool {
		return regexp.MustCompile(`purgatory_calls_total\{circuit="shipping",outcome="success"\} [1-9]`).MatchString(get(t, base+"metrics"))
	}, 20*time.Second, 50*time.Millisecond)

	// The operator, on this machine, isolates a circuit; the JSON and the
	// metrics say so.
	req, err := http.NewRequest(http.MethodPost, base+"circuits/shipping/isolate", nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var l status.List
	require.NoError(t, json.Unmarshal([]byte(get(t, base+"circuits?state=isolated")), &l))
	require.Len(t, l.Circuits, 1)
	require.Equal(t, "shipping", l.Circuits[0].Name)
	assert.Equal(t, "isolated", l.Circuits[0].State)
	assert.True(t, l.Controls)
	assert.Contains(t, get(t, base+"metrics"), `purgatory_circuit_state{circuit="shipping",state="isolated"} 1`)
	assert.True(t, strings.HasPrefix(get(t, base), "<!DOCTYPE html>"))
}
