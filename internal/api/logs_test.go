package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/trenchcoat/trenchcoat/internal/query/querytest"
	"github.com/trenchcoat/trenchcoat/internal/store"
	"github.com/trenchcoat/trenchcoat/internal/store/columnar"
)

func newLogServer(t *testing.T, lim QueryLimits) *httptest.Server {
	t.Helper()
	s := querytest.New()
	if err := s.WriteLogs(context.Background(), querytest.GenLogs(1, 2000, qT0, time.Hour)); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	RegisterLogQueries(mux, s, lim)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

type lokiAnswer struct {
	Status string
	Data   struct {
		ResultType string
		Result     []struct {
			Stream map[string]string
			Metric map[string]string
			Values [][2]any
		}
	}
}

func TestLogQueryStreams(t *testing.T) {
	srv := newLogServer(t, QueryLimits{})
	var res lokiAnswer
	q := url.QueryEscape(`{service_name="tickets-server", cloud_availability_zone=~"us-east-1[ab]"} |= "pool"`)
	qGet(t, srv, "/api/v1/logs/query?limit=20&q="+q+"&"+qRange(), 200, &res)
	if res.Status != "success" || res.Data.ResultType != "streams" || len(res.Data.Result) == 0 {
		t.Fatalf("streams: %+v", res)
	}
	n := 0
	for _, s := range res.Data.Result {
		if s.Stream["service_name"] != "tickets-server" || s.Stream["log_group"] != "/ecs/tickets-server" || s.Stream["level"] != "error" {
			t.Errorf("stream labels %v", s.Stream)
		}
		prev := int64(1 << 62)
		for _, v := range s.Values {
			ts, err := strconv.ParseInt(v[0].(string), 10, 64)
			if err != nil || ts > prev || !strings.Contains(v[1].(string), "pool") {
				t.Errorf("entry %v", v)
			}
			prev = ts
			n++
		}
	}
	if n != 20 {
		t.Errorf("%d entries, want 20", n)
	}
	// Forward, with a parser and a label filter.
	q = url.QueryEscape(`{service_name="tickets-api"} | json | req_status >= 500`)
	qGet(t, srv, "/api/v1/logs/query?direction=forward&q="+q+"&"+qRange(), 200, &res)
	for _, s := range res.Data.Result {
		if s.Stream["req_status"] != "500" {
			t.Errorf("json stream %v", s.Stream)
		}
		prev := int64(0)
		for _, v := range s.Values {
			ts, _ := strconv.ParseInt(v[0].(string), 10, 64)
			if ts < prev {
				t.Errorf("forward order broken")
			}
			prev = ts
		}
	}
}

func TestLogQueryMatrix(t *testing.T) {
	srv := newLogServer(t, QueryLimits{})
	var res lokiAnswer
	q := url.QueryEscape(`sum by (level) (count_over_time({log_group=~".+"} [5m]))`)
	qGet(t, srv, "/api/v1/logs/query?step=300&q="+q+"&"+qRange(), 200, &res)
	if res.Data.ResultType != "matrix" || len(res.Data.Result) != 4 {
		t.Fatalf("matrix: %+v", res)
	}
	total := 0.0
	for _, s := range res.Data.Result {
		if s.Metric["level"] == "" {
			t.Errorf("series %v", s.Metric)
		}
		for _, v := range s.Values {
			f, _ := strconv.ParseFloat(v[1].(string), 64)
			total += f
		}
	}
	// Windows of 5m every 5m from start: every line but those at exactly
	// the end, in the hour.
	if total < 1900 || total > 2000 {
		t.Errorf("total %v, want about 2000", total)
	}
}

func TestLogGroupsVolumeLabels(t *testing.T) {
	srv := newLogServer(t, QueryLimits{})
	var groups struct {
		Groups []struct {
			Name             string
			Lines            int64
			LastSeenUnixNano string
		}
	}
	qGet(t, srv, "/api/v1/logs/groups?"+qRange(), 200, &groups)
	if len(groups.Groups) != 3 {
		t.Fatalf("groups: %+v", groups)
	}
	var lines int64
	for _, g := range groups.Groups {
		last, err := strconv.ParseInt(g.LastSeenUnixNano, 10, 64)
		if err != nil || last < qT0.Add(50*time.Minute).UnixNano() || last >= qT0.Add(time.Hour).UnixNano() {
			t.Errorf("group %+v", g)
		}
		lines += g.Lines
	}
	if lines != 2000 {
		t.Errorf("%d lines in groups", lines)
	}
	var vol lokiAnswer
	q := url.QueryEscape(`{service_name="tickets-database"}`)
	qGet(t, srv, "/api/v1/logs/volume?step=10m&q="+q+"&"+qRange(), 200, &vol)
	levels := map[string]bool{}
	for _, s := range vol.Data.Result {
		levels[s.Metric["level"]] = true
	}
	if vol.Data.ResultType != "matrix" || !levels["fatal"] || !levels["info"] || levels["error"] {
		t.Errorf("volume: %+v", vol)
	}
	var labels struct {
		Status string
		Data   []string
	}
	qGet(t, srv, "/api/v1/logs/labels?"+qRange(), 200, &labels)
	if strings.Join(labels.Data, ",") != "cloud_availability_zone,cloud_region,level,log_group,service_name" {
		t.Errorf("labels: %+v", labels)
	}
	qGet(t, srv, "/api/v1/logs/label/service_name/values?"+qRange(), 200, &labels)
	if strings.Join(labels.Data, ",") != "tickets-api,tickets-database,tickets-server" {
		t.Errorf("values: %+v", labels)
	}
}

func TestLogErrors(t *testing.T) {
	srv := newLogServer(t, QueryLimits{MaxSeries: 2})
	var e struct{ Status, ErrorType, Error string }
	qGet(t, srv, "/api/v1/logs/query?q="+url.QueryEscape(`{a="x"`), 400, &e)
	if e.ErrorType != "bad_data" || e.Error != `parse error at line 1, col 7: expected "}"` {
		t.Errorf("parse error: %+v", e)
	}
	qGet(t, srv, "/api/v1/logs/query", 400, nil)
	qGet(t, srv, "/api/v1/logs/query?direction=up&q="+url.QueryEscape(`{a="x"}`), 400, nil)
	qGet(t, srv, "/api/v1/logs/volume?q="+url.QueryEscape(`rate({a="x"}[1m])`), 400, nil)
	qGet(t, srv, "/api/v1/logs/query?q="+url.QueryEscape(`count_over_time({cloud_region="us-east-1"}[1m])`)+"&"+qRange(), 422, &e)
	if !strings.Contains(e.Error, "more than 2 series") {
		t.Errorf("series limit: %+v", e)
	}
	rows := newLogServer(t, QueryLimits{MaxRows: 5})
	qGet(t, rows, "/api/v1/logs/query?q="+url.QueryEscape(`{cloud_region="us-east-1"} | logfmt`)+"&"+qRange(), 422, nil)
	slow := newLogServer(t, QueryLimits{Timeout: time.Nanosecond})
	qGet(t, slow, "/api/v1/logs/query?q="+url.QueryEscape(`{cloud_region="us-east-1"}`)+"&"+qRange(), 422, nil)
}

// TestQueriesColumnar runs the endpoints over the embedded engine, flushed
// to blocks, and checks the answers agree with the in-memory store's.
func TestQueriesColumnar(t *testing.T) {
	ctx := context.Background()
	col, err := columnar.Open(columnar.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer col.Close()
	mem := querytest.New()
	td := querytest.GenTraces(1, 300, qT0, time.Hour)
	ld := querytest.GenLogs(1, 2000, qT0, time.Hour)
	for _, w := range []interface {
		WriteTraces(context.Context, ptrace.Traces) error
		WriteLogs(context.Context, plog.Logs) error
	}{col, mem} {
		if err := w.WriteTraces(ctx, td); err != nil {
			t.Fatal(err)
		}
		if err := w.WriteLogs(ctx, ld); err != nil {
			t.Fatal(err)
		}
	}
	col.Flush()
	serve := func(tr store.TraceReader, lr store.LogReader) *httptest.Server {
		mux := http.NewServeMux()
		RegisterTraceQueries(mux, tr, QueryLimits{})
		RegisterLogQueries(mux, lr, QueryLimits{})
		srv := httptest.NewServer(mux)
		t.Cleanup(srv.Close)
		return srv
	}
	cs, ms := serve(col, col), serve(mem, mem)
	for _, path := range []string{
		"/api/v1/traces/search?limit=5&q=" + url.QueryEscape(`{ status = error && resource.service.name = "tickets-server" }`),
		"/api/v1/traces/search?limit=5&q=" + url.QueryEscape(`{ kind = server } >> { name = "charge" }`),
		"/api/v1/traces/aggregate?step=5m&q=" + url.QueryEscape(`{ status = error } | rate() by (resource.cloud.availability_zone)`),
		"/api/v1/traces/aggregate?step=15m&q=" + url.QueryEscape(`{ kind = server } | quantile_over_time(duration, 0.5, 0.9) by (resource.service.name)`),
		"/api/v1/traces/attributes?scope=resource",
		"/api/v1/traces/attributes/resource.cloud.availability_zone/values?q=" + url.QueryEscape(`{ status = error }`),
		"/api/v1/traces/attributes/name/values?x=1",
		"/api/v1/logs/query?limit=30&q=" + url.QueryEscape(`{service_name="tickets-server"} |= "pool"`),
		"/api/v1/logs/query?step=300&q=" + url.QueryEscape(`sum by (level) (count_over_time({log_group=~".+"} [5m]))`),
		"/api/v1/logs/query?step=300&q=" + url.QueryEscape(`count_over_time({log_group=~".+"} |= "FATAL" [1m])`),
		"/api/v1/logs/groups?x=1",
		"/api/v1/logs/volume?step=10m&q=" + url.QueryEscape(`{cloud_region="us-east-1"}`),
		"/api/v1/logs/labels?x=1",
		"/api/v1/logs/label/level/values?x=1",
		// The engine ranks span keys of blocks by bytes, not rows; keys only.
		"/api/v1/traces/attributes?scope=span&x=keysonly",
	} {
		path += "&" + qRange()
		got := qGet(t, cs, path, 200, nil)
		if strings.Contains(path, "x=keysonly") {
			var a, b struct{ Attributes []struct{ Key string } }
			qGet(t, cs, path, 200, &a)
			qGet(t, ms, path, 200, &b)
			keys := func(x []struct{ Key string }) []string {
				var out []string
				for _, k := range x {
					out = append(out, k.Key)
				}
				sort.Strings(out)
				return out
			}
			if !reflect.DeepEqual(keys(a.Attributes), keys(b.Attributes)) {
				t.Errorf("GET %s: keys %v, want %v", path, keys(a.Attributes), keys(b.Attributes))
			}
			continue
		}
		want := qGet(t, ms, path, 200, nil)
		if got != want {
			t.Errorf("GET %s\ncolumnar:  %.600s\nin-memory: %.600s", path, got, want)
		}
	}
}
