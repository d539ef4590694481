package bench

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	purgatory "github.com/purgatory-go/purgatory/runtime"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// perHostRequests returns one GET per host, made once.
func perHostRequests(n int) []*http.Request {
	reqs := make([]*http.Request, n)
	for i := range reqs {
		reqs[i], _ = http.NewRequest(http.MethodGet, fmt.Sprintf("http://host%d.example/v1/items", i), nil)
	}
	return reqs
}

var okResponse = &http.Response{StatusCode: http.StatusOK}

// BenchmarkPerHostHTTP measures a round trip through each contender's
// per-host circuits over a base transport that does no I/O: Closed cycles
// over 8 hosts whose circuits are closed; Open sends to one host whose
// circuit is open (a rejection).
//
//	go test -run '^$' -bench PerHostHTTP -benchmem -count 10 -cpu 1 .
func BenchmarkPerHostHTTP(b *testing.B) {
	reqs := perHostRequests(8)
	b.Run("Closed", func(b *testing.B) {
		for _, c := range HostContenders {
			b.Run(c.Name, func(b *testing.B) {
				rt := c.New(NopTransport{okResponse})
				for _, r := range reqs {
					_, _ = rt.RoundTrip(r) // make the circuits
				}
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					_, _ = rt.RoundTrip(reqs[i&7])
					i++
				}
			})
		}
	})
	b.Run("Open", func(b *testing.B) {
		for _, c := range HostContenders {
			if c.Open == nil {
				continue
			}
			b.Run(c.Name, func(b *testing.B) {
				rt := c.New(NopTransport{okResponse})
				c.Open(rt, reqs[0].URL.Host)
				b.ReportAllocs()
				for b.Loop() {
					_, _ = rt.RoundTrip(reqs[0])
				}
			})
		}
	})
}

// countingTransport counts its calls and answers with a fixed status.
type countingTransport struct {
	calls int
	resp  *http.Response
}

func (t *countingTransport) RoundTrip(*http.Request) (*http.Response, error) {
	t.calls++
	return t.resp, nil
}

// Every per-host contender lets answers through, opens a host's circuit
// after Threshold 5xx answers without touching the others, and rejects
// the open host's requests without calling the base transport.
func TestHostContenders(t *testing.T) {
	reqs := perHostRequests(2)
	for _, c := range HostContenders[1:] {
		if c.Name == "purgatory-static" {
			continue // one circuit for all hosts, by design
		}
		t.Run(c.Name, func(t *testing.T) {
			base := &countingTransport{resp: &http.Response{StatusCode: http.StatusServiceUnavailable}}
			rt := c.New(base)
			for range Threshold {
				resp, err := rt.RoundTrip(reqs[0])
				require.NoError(t, err)
				assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "the caller gets the answer")
			}
			_, err := rt.RoundTrip(reqs[0])
			require.Error(t, err, "open after %d failures", Threshold)
			assert.Equal(t, Threshold, base.calls)
			base.resp = okResponse
			resp, err := rt.RoundTrip(reqs[1])
			require.NoError(t, err, "the other host's circuit is closed")
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			if c.Name == "purgatory-httpcircuit" {
				_, err := rt.RoundTrip(reqs[0])
				assert.True(t, errors.Is(err, purgatory.ErrOpen))
			}
		})
	}
}
