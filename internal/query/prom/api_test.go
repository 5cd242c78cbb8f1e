package prom

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// seed writes a few series through remote write and OTLP.
func seed(t *testing.T, s *server, now time.Time) {
	t.Helper()
	req := &prompb.WriteRequest{}
	for _, inst := range []string{"a", "b", "c"} {
		ts := prompb.TimeSeries{Labels: lbls("__name__", "up", "job", "node", "instance", inst)}
		for i := range 20 {
			ts.Samples = append(ts.Samples, prompb.Sample{Value: 1, Timestamp: now.Add(time.Duration(i-20) * 15 * time.Second).UnixMilli()})
		}
		req.Timeseries = append(req.Timeseries, ts)
	}
	if code := remoteWrite(t, http.DefaultClient, s.srv.URL+"/api/v1/write", req); code != http.StatusNoContent {
		t.Fatalf("remote write: %d", code)
	}
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "checkout")
	rm.Resource().Attributes().PutStr("host.name", "h1") // makes a target_info
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("http.server.request.duration")
	m.SetUnit("s")
	m.SetDescription("Duration of HTTP server requests.")
	h := m.SetEmptyHistogram()
	h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	dp := h.DataPoints().AppendEmpty()
	dp.SetTimestamp(pcommon.NewTimestampFromTime(now.Add(-time.Minute)))
	dp.ExplicitBounds().FromRaw([]float64{0.1, 1})
	dp.BucketCounts().FromRaw([]uint64{1, 2, 3})
	dp.SetCount(6)
	dp.SetSum(4.2)
	if err := s.store.WriteMetrics(context.Background(), md); err != nil {
		t.Fatal(err)
	}
}

func TestEndpoints(t *testing.T) {
	s := newServer(t, Config{})
	now := time.Now()
	seed(t, s, now)
	at := unixString(now)

	t.Run("query GET", func(t *testing.T) {
		code, r := get(t, s.srv.URL, "/api/v1/query", url.Values{"query": {"sum(up)"}, "time": {at}})
		if code != 200 || r.Status != "success" {
			t.Fatalf("%d %+v", code, r)
		}
		var d struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		}
		mustUnmarshal(t, r.Data, &d)
		if d.ResultType != "vector" || len(d.Result) != 1 || d.Result[0].Value[1] != "3" {
			t.Errorf("data = %s", r.Data)
		}
	})
	t.Run("query POST form", func(t *testing.T) {
		code, r := postForm(t, s.srv.URL, "/api/v1/query", url.Values{"query": {"up"}, "time": {at}})
		if code != 200 || !strings.Contains(string(r.Data), `"instance":"b"`) {
			t.Fatalf("%d %s", code, r.Data)
		}
	})
	t.Run("query scalar and string", func(t *testing.T) {
		_, r := get(t, s.srv.URL, "/api/v1/query", url.Values{"query": {"1.5"}, "time": {"100.25"}})
		if got := string(r.Data); got != `{"resultType":"scalar","result":[100.250,"1.5"]}` {
			t.Errorf("scalar = %s", got)
		}
		_, r = get(t, s.srv.URL, "/api/v1/query", url.Values{"query": {`"hi"`}, "time": {"100"}})
		if got := string(r.Data); got != `{"resultType":"string","result":[100,"hi"]}` {
			t.Errorf("string = %s", got)
		}
	})
	t.Run("query limit", func(t *testing.T) {
		_, r := get(t, s.srv.URL, "/api/v1/query", url.Values{"query": {"up"}, "time": {at}, "limit": {"2"}})
		if strings.Count(string(r.Data), `"metric"`) != 2 || len(r.Warnings) != 1 {
			t.Errorf("limit: %s %v", r.Data, r.Warnings)
		}
	})
	t.Run("query_range POST", func(t *testing.T) {
		code, r := postForm(t, s.srv.URL, "/api/v1/query_range", url.Values{
			"query": {"count(up)"}, "start": {unixString(now.Add(-4 * time.Minute))}, "end": {at}, "step": {"60"},
		})
		if code != 200 || !strings.Contains(string(r.Data), `"resultType":"matrix"`) || strings.Count(string(r.Data), `"3"]`) != 5 {
			t.Fatalf("%d %s", code, r.Data)
		}
	})
	t.Run("series", func(t *testing.T) {
		code, r := get(t, s.srv.URL, "/api/v1/series", url.Values{"match[]": {`up{instance="a"}`, `up{instance="b"}`}})
		var d []map[string]string
		mustUnmarshal(t, r.Data, &d)
		if code != 200 || len(d) != 2 {
			t.Fatalf("%d %s", code, r.Data)
		}
	})
	t.Run("labels", func(t *testing.T) {
		_, r := postForm(t, s.srv.URL, "/api/v1/labels", url.Values{"match[]": {"up"}})
		if got := string(r.Data); got != `["__name__","instance","job"]` {
			t.Errorf("labels = %s", got)
		}
	})
	t.Run("label values", func(t *testing.T) {
		_, r := get(t, s.srv.URL, "/api/v1/label/__name__/values", nil)
		var d []string
		mustUnmarshal(t, r.Data, &d)
		want := []string{"http_server_request_duration_seconds_bucket", "http_server_request_duration_seconds_count", "http_server_request_duration_seconds_sum", "target_info", "up"}
		if strings.Join(d, ",") != strings.Join(want, ",") {
			t.Errorf("names = %v, want %v", d, want)
		}
		_, r = get(t, s.srv.URL, "/api/v1/label/instance/values", url.Values{"limit": {"1"}})
		if string(r.Data) != `["a"]` || len(r.Warnings) != 1 {
			t.Errorf("limited values = %s %v", r.Data, r.Warnings)
		}
	})
	t.Run("metadata", func(t *testing.T) {
		_, r := get(t, s.srv.URL, "/api/v1/metadata", nil)
		var d map[string][]map[string]string
		mustUnmarshal(t, r.Data, &d)
		e := d["http_server_request_duration_seconds"]
		if len(e) != 1 || e[0]["type"] != "histogram" || e[0]["unit"] != "seconds" || e[0]["help"] != "Duration of HTTP server requests." {
			t.Errorf("metadata = %s", r.Data)
		}
		_, r = get(t, s.srv.URL, "/api/v1/metadata", url.Values{"metric": {"nope"}})
		if string(r.Data) != `{}` {
			t.Errorf("unknown metric metadata = %s", r.Data)
		}
	})
	t.Run("format_query", func(t *testing.T) {
		_, r := get(t, s.srv.URL, "/api/v1/format_query", url.Values{"query": {"sum(rate(x[5m]))by(job)"}})
		if string(r.Data) != `"sum by (job) (rate(x[5m]))"` {
			t.Errorf("format = %s", r.Data)
		}
	})
	t.Run("buildinfo", func(t *testing.T) {
		code, r := get(t, s.srv.URL, "/api/v1/status/buildinfo", nil)
		if code != 200 || !strings.Contains(string(r.Data), `"version"`) {
			t.Errorf("%d %s", code, r.Data)
		}
	})
}

// TestErrors: the error statuses and types Prometheus uses.
func TestErrors(t *testing.T) {
	s := newServer(t, Config{})
	seed(t, s, time.Now())
	f := func(path string, params url.Values, wantCode int, wantType string) {
		t.Helper()
		code, r := get(t, s.srv.URL, path, params)
		if code != wantCode || r.Status != "error" || r.ErrorType != wantType || r.Error == "" {
			t.Errorf("%s %v: got %d %q %q %q, want %d %q", path, params, code, r.Status, r.ErrorType, r.Error, wantCode, wantType)
		}
	}
	f("/api/v1/query", url.Values{"query": {"sum(up"}}, 400, "bad_data")
	f("/api/v1/query", url.Values{}, 400, "bad_data")
	f("/api/v1/query", url.Values{"query": {"up"}, "time": {"yesterday"}}, 400, "bad_data")
	f("/api/v1/query", url.Values{"query": {"up"}, "timeout": {"-1s"}}, 400, "bad_data")
	f("/api/v1/query", url.Values{"query": {"up"}, "limit": {"-1"}}, 400, "bad_data")
	f("/api/v1/query", url.Values{"query": {`{__name__=~".+"} + on() {__name__=~".+"}`}}, 422, "execution")
	f("/api/v1/query_range", url.Values{"query": {"up"}, "start": {"100"}, "end": {"50"}, "step": {"10"}}, 400, "bad_data")
	f("/api/v1/query_range", url.Values{"query": {"up"}, "start": {"0"}, "end": {"100"}, "step": {"0"}}, 400, "bad_data")
	f("/api/v1/query_range", url.Values{"query": {"up"}, "start": {"0"}, "end": {"100000"}, "step": {"1"}}, 400, "bad_data")
	f("/api/v1/query_range", url.Values{"query": {"up"}, "end": {"100"}, "step": {"1"}}, 400, "bad_data")
	f("/api/v1/series", url.Values{}, 400, "bad_data")
	f("/api/v1/series", url.Values{"match[]": {`{job=~".*"}`}}, 400, "bad_data")
	f("/api/v1/labels", url.Values{"match[]": {`up{`}}, 400, "bad_data")
	f("/api/v1/label/U__in_2e_valid/values", url.Values{"start": {"x"}}, 400, "bad_data")
	f("/api/v1/metadata", url.Values{"limit": {"x"}}, 400, "bad_data")
	f("/api/v1/format_query", url.Values{"query": {"(("}}, 400, "bad_data")
	f("/api/v1/nonexistent", nil, 404, "not_found")
	f("/api/v1/query/extra", nil, 404, "not_found")

	// A request timeout that has passed before the engine starts: 503.
	f("/api/v1/query", url.Values{"query": {"up"}, "timeout": {"0.000000001"}}, 503, "timeout")

	// Methods other than GET and POST.
	req, _ := http.NewRequest(http.MethodDelete, s.srv.URL+"/api/v1/query?query=up", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 4 {
		t.Errorf("DELETE /api/v1/query: %d", resp.StatusCode)
	}
}

// TestEngineTimeout: the configured timeout bounds every query; 503.
func TestEngineTimeout(t *testing.T) {
	s := newServer(t, Config{Timeout: time.Nanosecond})
	code, r := get(t, s.srv.URL, "/api/v1/query", url.Values{"query": {"sum(up)"}})
	if code != 503 || r.ErrorType != "timeout" {
		t.Errorf("got %d %+v", code, r)
	}
}

func TestRemoteWriteErrors(t *testing.T) {
	s := newServer(t, Config{})
	resp, err := http.Post(s.srv.URL+"/api/v1/write", "application/x-protobuf", strings.NewReader("not snappy"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("garbage body: %d, want 400", resp.StatusCode)
	}
	// A sample far older than the out-of-order window: refused with 400
	// so that the sender does not retry it forever.
	now := time.Now()
	fresh := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels: lbls("__name__", "x", "job", "j"), Samples: []prompb.Sample{{Value: 1, Timestamp: now.UnixMilli()}},
	}}}
	if code := remoteWrite(t, http.DefaultClient, s.srv.URL+"/api/v1/write", fresh); code != http.StatusNoContent {
		t.Fatalf("fresh sample: %d", code)
	}
	old := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels: lbls("__name__", "x", "job", "j"), Samples: []prompb.Sample{{Value: 1, Timestamp: now.Add(-30 * 24 * time.Hour).UnixMilli()}},
	}}}
	if code := remoteWrite(t, http.DefaultClient, s.srv.URL+"/api/v1/write", old); code != http.StatusBadRequest {
		t.Errorf("too old sample: %d, want 400", code)
	}
}

func TestNewErrors(t *testing.T) {
	if _, err := New(Config{}, nil, nil); err == nil {
		t.Error("nil Queryable accepted")
	}
	s := newServer(t, Config{})
	if _, err := New(Config{}, s.store.Queryable(), v1Only{}); err == nil {
		t.Error("an Appendable without AppenderV2 accepted")
	}
	a, err := New(Config{}, s.store.Queryable(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.Engine() == nil {
		t.Error("no engine")
	}
	if err := a.Close(); err != nil {
		t.Error(err)
	}
	if err := a.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

type v1Only struct{}

func (v1Only) Appender(context.Context) storageAppender { return nil }

func mustUnmarshal(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
}
