package status_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	goruntime "runtime"
	"strings"
	"testing"

	"github.com/purgatory-go/purgatory/observe/status"
)

// BenchmarkHandler measures one request to a handler of 10,000 circuits
// (10 open, 10 isolated): the JSON unfiltered, filtered by state, by name
// and limited, and the page as it polls itself (200 rows) and filtered.
func BenchmarkHandler(b *testing.B) {
	f, _ := many(b, 10_000)
	h := status.New(f, status.Options{Authorize: yes})
	b.Cleanup(h.Close)
	for _, bc := range []struct{ name, target string }{
		{"json/all", "/circuits"},
		{"json/state=open", "/circuits?state=open"},
		{"json/q=host-0999", "/circuits?q=host-0999"},
		{"json/limit=100", "/circuits?limit=100"},
		{"page/200-rows", "/"},
		{"page/state=open", "/?state=open,half-open,isolated"},
		{"page/q=host-0999", "/?q=host-0999"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := httptest.NewRequest(http.MethodGet, bc.target, nil)
			var n int64
			for b.Loop() {
				w := &countingWriter{header: http.Header{}}
				h.ServeHTTP(w, r)
				n = w.n
			}
			b.ReportMetric(float64(n), "bytes/op")
		})
	}
}

type countingWriter struct {
	header http.Header
	n      int64
}

func (w *countingWriter) Header() http.Header { return w.header }
func (w *countingWriter) WriteHeader(int)     {}
func (w *countingWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return len(p), nil
}

var _ io.Writer = (*countingWriter)(nil)

// BenchmarkHistoryBytes reports what the handler's history costs per
// circuit that failed and changed state more than KeepTransitions times,
// with an error text longer than MaxErrorText (the most it keeps), and per
// quiet circuit (the runtime's own cost aside).
func BenchmarkHistoryBytes(b *testing.B) {
	const n = 1000
	long := errors.New(strings.Repeat("x", 2*status.MaxErrorText))
	heap := func() uint64 {
		goruntime.GC()
		var m goruntime.MemStats
		goruntime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	for range b.N {
		b.StopTimer()
		f, bs := many(b, n)
		f.CountCalls() // as New does: the runtime's cost, not the history's
		before := heap()
		h := status.New(f, status.Options{})
		quiet := heap()
		for _, br := range bs {
			br.Close()
			for range status.KeepTransitions + 8 {
				_ = br.Do(context.Background(), func(context.Context) error { return long })
				br.Open()
				br.Close()
			}
		}
		after := heap()
		b.ReportMetric(float64(int64(quiet)-int64(before))/n, "B/quiet-circuit")
		b.ReportMetric(float64(int64(after)-int64(quiet))/n, "B/busy-circuit")
		goruntime.KeepAlive(h)
		h.Close()
		_ = f.Close()
	}
}
