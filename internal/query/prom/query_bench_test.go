package prom

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

// BenchmarkQueryRange: a 3 h range query (step 15 s) over 1,000 counter
// series sampled every 15 s, through the HTTP handler including JSON.
func BenchmarkQueryRange(b *testing.B) {
	s := newServer(b, Config{})
	const series = 1000
	end := time.Now().Truncate(time.Minute)
	start := end.Add(-3 * time.Hour)
	app := s.store.Appendable().Appender(context.Background())
	refs := make([]labels.Labels, series)
	for i := range refs {
		refs[i] = labels.FromStrings("__name__", "bench_requests_total", "job", "bench", "route", "/r"+strconv.Itoa(i%50), "pod", "p"+strconv.Itoa(i))
	}
	for ts := start.Add(-5 * time.Minute); !ts.After(end); ts = ts.Add(15 * time.Second) {
		for i, ls := range refs {
			if _, err := app.Append(0, ls, ts.UnixMilli(), float64(ts.Unix()%100000)*float64(i%7+1)); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := app.Commit(); err != nil {
		b.Fatal(err)
	}
	params := url.Values{
		"query": {`sum by (route) (rate(bench_requests_total[5m]))`},
		"start": {strconv.FormatInt(start.Unix(), 10)},
		"end":   {strconv.FormatInt(end.Unix(), 10)},
		"step":  {"15"},
	}
	u := "/api/v1/query_range?" + params.Encode()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		rec := httptest.NewRecorder()
		s.api.queryRange(rec, httptest.NewRequest(http.MethodGet, u, nil))
		if rec.Code != http.StatusOK {
			b.Fatalf("%d %s", rec.Code, rec.Body)
		}
	}
}
