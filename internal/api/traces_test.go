package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/trenchcoat/trenchcoat/internal/query/querytest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var qT0 = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

func qRange() string {
	return "start=" + url.QueryEscape(qT0.Format(time.RFC3339)) + "&end=" + qUnix(qT0.Add(time.Hour))
}

// qUnix writes t as fractional Unix seconds, the other form ParseTime takes.
func qUnix(t time.Time) string { return strconv.FormatFloat(float64(t.UnixNano())/1e9, 'f', 3, 64) }

func newTraceServer(t *testing.T, lim QueryLimits) *httptest.Server {
	t.Helper()
	s := querytest.New()
	if err := s.WriteTraces(context.Background(), querytest.GenTraces(1, 300, qT0, time.Hour)); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	RegisterTraceQueries(mux, s, lim)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// get fetches path and decodes the JSON answer into v (when not nil).
func qGet(t *testing.T, srv *httptest.Server, path string, wantCode int, v any) string {
	t.Helper()
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantCode {
		t.Fatalf("GET %s: %d %s, want %d", path, resp.StatusCode, body, wantCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("GET %s: content type %q", path, ct)
	}
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("GET %s: %v in %s", path, err, body)
		}
	}
	return string(body)
}

func TestTraceSearch(t *testing.T) {
	srv := newTraceServer(t, QueryLimits{})
	var res struct {
		Traces []struct {
			TraceID           string  `json:"traceID"`
			RootServiceName   string  `json:"rootServiceName"`
			RootSpanName      string  `json:"rootSpanName"`
			StartTimeUnixNano string  `json:"startTimeUnixNano"`
			DurationMs        float64 `json:"durationMs"`
			SpanCount         int     `json:"spanCount"`
			ErrorCount        int     `json:"errorCount"`
			Matched           []struct {
				SpanID      string  `json:"spanID"`
				Name        string  `json:"name"`
				ServiceName string  `json:"serviceName"`
				DurationMs  float64 `json:"durationMs"`
				Status      string  `json:"status"`
			} `json:"matched"`
		} `json:"traces"`
	}
	q := url.QueryEscape(`{ resource.service.name = "tickets-server" && status = error }`)
	qGet(t, srv, "/api/v1/traces/search?limit=7&q="+q+"&"+qRange(), 200, &res)
	if len(res.Traces) != 7 {
		t.Fatalf("%d traces, want 7", len(res.Traces))
	}
	prev := ""
	for _, tr := range res.Traces {
		if len(tr.TraceID) != 32 || tr.SpanCount < 4 || tr.ErrorCount < 2 || tr.DurationMs < 30000 || len(tr.Matched) == 0 {
			t.Errorf("odd trace %+v", tr)
		}
		if tr.RootServiceName != "" && (tr.RootServiceName != "tickets-api" || !strings.HasPrefix(tr.RootSpanName, "POST ")) {
			t.Errorf("root %q %q", tr.RootServiceName, tr.RootSpanName)
		}
		for _, m := range tr.Matched {
			if m.ServiceName != "tickets-server" || m.Status != "error" || len(m.SpanID) != 16 {
				t.Errorf("matched span %+v", m)
			}
		}
		if prev != "" && len(tr.StartTimeUnixNano) == len(prev) && tr.StartTimeUnixNano > prev {
			t.Errorf("not newest first: %s after %s", tr.StartTimeUnixNano, prev)
		}
		prev = tr.StartTimeUnixNano
	}
	// No match: an empty list, not null.
	body := qGet(t, srv, "/api/v1/traces/search?q="+url.QueryEscape(`{ name = "nope" }`)+"&"+qRange(), 200, nil)
	if strings.TrimSpace(body) != `{"traces":[]}` {
		t.Errorf("empty search: %s", body)
	}
}

func TestTraceErrors(t *testing.T) {
	srv := newTraceServer(t, QueryLimits{MaxSeries: 2})
	var e struct{ Status, ErrorType, Error string }
	qGet(t, srv, "/api/v1/traces/search?q="+url.QueryEscape(`{ status = error `), 400, &e)
	if e.Status != "error" || e.ErrorType != "bad_data" || e.Error != `parse error at line 1, col 18: expected "}"` {
		t.Errorf("parse error: %+v", e)
	}
	qGet(t, srv, "/api/v1/traces/search?limit=x", 400, nil)
	qGet(t, srv, "/api/v1/traces/search?start=yesterday", 400, nil)
	qGet(t, srv, "/api/v1/traces/aggregate?q="+url.QueryEscape(`{}`), 400, nil)
	qGet(t, srv, "/api/v1/traces/aggregate?step=-1&q="+url.QueryEscape(`{} | rate()`), 400, nil)
	qGet(t, srv, "/api/v1/traces/aggregate?q="+url.QueryEscape(`{} | rate() by (resource.cloud.availability_zone)`)+"&"+qRange(), 422, &e)
	if !strings.Contains(e.Error, "query limit exceeded") {
		t.Errorf("series limit: %+v", e)
	}
	qGet(t, srv, "/api/v1/traces/aggregate?step=1ms&q="+url.QueryEscape(`{} | rate()`)+"&"+qRange(), 422, nil)
	qGet(t, srv, "/api/v1/traces/attributes?scope=nope", 400, nil)
	qGet(t, srv, "/api/v1/traces/attributes/rootName/values", 400, nil)
	qGet(t, srv, "/api/v1/traces/attributes/foo/values", 400, nil)

	rows := newTraceServer(t, QueryLimits{MaxRows: 10})
	qGet(t, rows, "/api/v1/traces/search?q="+url.QueryEscape(`{ kind = server }`)+"&"+qRange(), 422, nil)
	slow := newTraceServer(t, QueryLimits{Timeout: time.Nanosecond})
	qGet(t, slow, "/api/v1/traces/aggregate?q="+url.QueryEscape(`{} | rate()`)+"&"+qRange(), 422, &e)
	if !strings.Contains(e.Error, "ran longer than") {
		t.Errorf("timeout: %+v", e)
	}
}

func TestTraceCancelled(t *testing.T) {
	s := querytest.New()
	if err := s.WriteTraces(context.Background(), querytest.GenTraces(1, 50, qT0, time.Hour)); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	RegisterTraceQueries(mux, s, QueryLimits{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := httptest.NewRequestWithContext(ctx, "GET", "/api/v1/traces/search?"+qRange(), nil)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	if rec.Code != 499 {
		t.Errorf("cancelled request: %d %s", rec.Code, rec.Body)
	}
}

func TestTraceAggregate(t *testing.T) {
	srv := newTraceServer(t, QueryLimits{})
	var res struct {
		Status string
		Data   struct {
			ResultType string
			Result     []struct {
				Metric map[string]string
				Values [][2]any
			}
		}
	}
	q := url.QueryEscape(`{ status = error && resource.service.name = "tickets-server" } | rate() by (resource.cloud.availability_zone)`)
	qGet(t, srv, "/api/v1/traces/aggregate?step=60&q="+q+"&"+qRange(), 200, &res)
	if res.Status != "success" || res.Data.ResultType != "matrix" || len(res.Data.Result) != 3 {
		t.Fatalf("aggregate: %+v", res)
	}
	total := 0.0
	for _, s := range res.Data.Result {
		if !strings.HasPrefix(s.Metric["resource.cloud.availability_zone"], "us-east-1") || len(s.Values) != 60 {
			t.Errorf("series %v with %d points", s.Metric, len(s.Values))
		}
		for i, v := range s.Values {
			ts, _ := v[0].(float64)
			if ts != float64(qT0.Unix()+int64(60*i)) {
				t.Errorf("point %d at %v", i, v[0])
			}
			var f float64
			if err := json.Unmarshal([]byte(v[1].(string)), &f); err != nil {
				t.Errorf("value %v", v[1])
			}
			total += f * 60
		}
	}
	if total < 30 {
		t.Errorf("only %v errored server spans", total)
	}
	q = url.QueryEscape(`{ kind = server } | quantile_over_time(duration, 0.5, 0.99)`)
	qGet(t, srv, "/api/v1/traces/aggregate?step=10m&q="+q+"&"+qRange(), 200, &res)
	if len(res.Data.Result) != 2 || res.Data.Result[0].Metric["p"] != "0.5" || res.Data.Result[1].Metric["p"] != "0.99" {
		t.Errorf("quantiles: %+v", res.Data.Result)
	}
}

func TestTraceAttributes(t *testing.T) {
	srv := newTraceServer(t, QueryLimits{})
	var keys struct {
		Attributes []struct {
			Scope, Key string
			Count      int64
		}
	}
	qGet(t, srv, "/api/v1/traces/attributes?scope=resource&"+qRange(), 200, &keys)
	found := false
	for _, k := range keys.Attributes {
		found = found || (k.Key == "cloud.availability_zone" && k.Scope == "resource" && k.Count > 0)
	}
	if !found {
		t.Errorf("resource keys: %+v", keys)
	}
	qGet(t, srv, "/api/v1/traces/attributes?"+qRange(), 200, &keys)
	scopes := map[string]bool{}
	for _, k := range keys.Attributes {
		scopes[k.Scope] = true
	}
	if len(scopes) != 3 {
		t.Errorf("all scopes: %v", scopes)
	}
	var vals struct {
		Values []struct {
			Value string
			Count int64
		}
	}
	q := url.QueryEscape(`{ status = error }`)
	qGet(t, srv, "/api/v1/traces/attributes/resource.service.name/values?q="+q+"&"+qRange(), 200, &vals)
	if len(vals.Values) != 2 || vals.Values[0].Count < vals.Values[1].Count {
		t.Errorf("values: %+v", vals)
	}
	qGet(t, srv, "/api/v1/traces/attributes/status/values?"+qRange(), 200, &vals)
	if len(vals.Values) != 3 {
		t.Errorf("status values: %+v", vals)
	}
}
