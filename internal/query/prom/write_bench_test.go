package prom

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
)

// BenchmarkRemoteWrite measures the remote-write receiver into the store
// (snappy + protobuf decode, append, commit to the WAL): 500 series x 20
// samples per request, reported as samples/s.
func BenchmarkRemoteWrite(b *testing.B) {
	s := newServer(b, Config{})
	const series, perSeries = 500, 20
	base := time.Now().Add(-24 * time.Hour).UnixMilli()
	req := &prompb.WriteRequest{Timeseries: make([]prompb.TimeSeries, series)}
	for i := range req.Timeseries {
		req.Timeseries[i] = prompb.TimeSeries{
			Labels:  lbls("__name__", "bench_requests_total", "job", "bench", "instance", "i"+strconv.Itoa(i%10), "route", "/r"+strconv.Itoa(i)),
			Samples: make([]prompb.Sample, perSeries),
		}
	}
	body := func(iter int) []byte {
		for i := range req.Timeseries {
			for j := range req.Timeseries[i].Samples {
				req.Timeseries[i].Samples[j] = prompb.Sample{
					Value:     float64(iter*perSeries + j),
					Timestamp: base + int64(iter*perSeries+j)*15_000,
				}
			}
		}
		pb, err := req.Marshal()
		if err != nil {
			b.Fatal(err)
		}
		return snappy.Encode(nil, pb)
	}
	b.ReportAllocs()
	b.ResetTimer()
	samples := 0
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		payload := body(i)
		b.SetBytes(int64(len(payload)))
		hr := httptest.NewRequest(http.MethodPost, "/api/v1/write", bytes.NewReader(payload))
		hr.Header.Set("Content-Encoding", "snappy")
		hr.Header.Set("Content-Type", "application/x-protobuf")
		hr.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
		rec := httptest.NewRecorder()
		b.StartTimer()
		s.api.write.ServeHTTP(rec, hr)
		if rec.Code != http.StatusNoContent {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		samples += series * perSeries
	}
	b.ReportMetric(float64(samples)/b.Elapsed().Seconds(), "samples/s")
}
