package ui

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkPages measures the server's share of a page: rendering the
// shell. The data behind it is fetched by the browser from the API; the
// browser walkthrough prints those timings.
func BenchmarkPages(b *testing.B) {
	h := newTestHandler(b)
	for _, target := range []string{"/slos", "/slos/x?breakdown=cloud_region", "/services", "/services/x", "/service-map", "/traces?q=%7B%7D", "/traces/0123", "/logs", "/logs/group?name=g", "/explore?left=up", "/alerts", "/investigations/x"} {
		b.Run(target, func(b *testing.B) {
			b.ReportAllocs()
			req := httptest.NewRequest(http.MethodGet, target, nil)
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatal(rec.Code)
				}
				b.SetBytes(int64(rec.Body.Len()))
			}
		})
	}
}
