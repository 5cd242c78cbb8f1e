package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/trenchcoat/trenchcoat/internal/investigate"
	"github.com/trenchcoat/trenchcoat/internal/store"
	"github.com/trenchcoat/trenchcoat/internal/store/columnar"
)

// investigationServer serves the investigations API over a store holding
// one service, "checkout", whose calls to a database fail from start on.
func investigationServer(t *testing.T, start, end time.Time) *httptest.Server {
	t.Helper()
	st, err := columnar.Open(columnar.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "checkout")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	n := uint64(0)
	for ts := start.Add(-end.Sub(start)); ts.Before(end); ts = ts.Add(5 * time.Second) {
		n++
		fail := !ts.Before(start) && n%2 == 0
		root := spans.AppendEmpty()
		root.SetTraceID(pcommon.TraceID{byte(n >> 8), byte(n), 1})
		root.SetSpanID(pcommon.SpanID{byte(n >> 8), byte(n), 1})
		root.SetName("POST /checkout")
		root.SetStartTimestamp(pcommon.NewTimestampFromTime(ts))
		root.SetEndTimestamp(pcommon.NewTimestampFromTime(ts.Add(20 * time.Millisecond)))
		db := spans.AppendEmpty()
		db.SetTraceID(root.TraceID())
		db.SetSpanID(pcommon.SpanID{byte(n >> 8), byte(n), 2})
		db.SetParentSpanID(root.SpanID())
		db.SetName("connect")
		db.SetStartTimestamp(pcommon.NewTimestampFromTime(ts.Add(time.Millisecond)))
		db.SetEndTimestamp(pcommon.NewTimestampFromTime(ts.Add(19 * time.Millisecond)))
		db.Attributes().PutStr("server.address", "carts-db-00aa11.internal:5432")
		if fail {
			for _, s := range []ptrace.Span{root, db} {
				s.Status().SetCode(ptrace.StatusCodeError)
				s.Status().SetMessage("sorry, too many clients already")
			}
		}
	}
	if err := st.WriteTraces(context.Background(), td); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	resolve := func(_ context.Context, slo string) (string, error) {
		if slo == "checkout-success" {
			return "checkout", nil
		}
		return "", fmt.Errorf("no SLO %q: %w", slo, store.ErrNotFound)
	}
	RegisterInvestigations(mux, investigate.New(investigate.Config{Traces: st, Logs: st}), resolve)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestInvestigationsAPI(t *testing.T) {
	end := time.Now().Truncate(time.Minute)
	start := end.Add(-20 * time.Minute)
	srv := investigationServer(t, start, end)

	post := func(body string) (*http.Response, map[string]any) {
		t.Helper()
		resp, err := http.Post(srv.URL+"/api/v1/investigations", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
		return resp, out
	}
	get := func(path string) (*http.Response, map[string]any) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
		return resp, out
	}

	// An SLO resolved to its service; times as unix seconds and RFC 3339.
	resp, out := post(fmt.Sprintf(`{"slo":"checkout-success","start":%d,"end":%q}`, start.Unix(), end.Format(time.RFC3339)))
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %v", resp.StatusCode, out)
	}
	data := out["data"].(map[string]any)
	if data["cause"] != "connection exhaustion" || data["resource"] != "carts-db-00aa11" {
		t.Errorf("cause %v resource %v; diagnosis %v", data["cause"], data["resource"], data["diagnosis"])
	}
	if req := data["request"].(map[string]any); req["service"] != "checkout" {
		t.Errorf("service not resolved: %v", req)
	}
	id := data["id"].(string)

	resp, out = get("/api/v1/investigations/" + id)
	if resp.StatusCode != 200 || out["data"].(map[string]any)["id"] != id {
		t.Errorf("get by id: %d %v", resp.StatusCode, out)
	}
	resp, out = get("/api/v1/investigations")
	if list := out["data"].([]any); resp.StatusCode != 200 || len(list) != 1 || list[0].(map[string]any)["id"] != id {
		t.Errorf("list: %d %v", resp.StatusCode, out)
	}

	f := func(body string, code int) {
		t.Helper()
		if resp, out := post(body); resp.StatusCode != code || out["status"] != "error" {
			t.Errorf("%s: status %d %v, want %d", body, resp.StatusCode, out, code)
		}
	}
	f(`{"slo":"nope"}`, 404)
	f(`{"service":"checkout","start":"yesterday"}`, 400)
	f(`{"service":"checkout","start":200,"end":100}`, 400)
	f(`{"service":"checkout","bogus":1}`, 400)
	f(`not json`, 400)
	if resp, _ := get("/api/v1/investigations/unknown"); resp.StatusCode != 404 {
		t.Errorf("unknown id: %d", resp.StatusCode)
	}
}
