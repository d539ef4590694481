package status_test

import (
	"io"
	"net/http"
	"net/http/httptest"
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
