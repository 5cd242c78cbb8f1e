package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/tsdb"
	"go.uber.org/goleak"

	"github.com/trenchcoat/trenchcoat/internal/alerting"
)

// sloServer wires a real TSDB, Manager and Registry behind the SLO and
// alert endpoints. The demo SLO comes from a --slo-dir style directory.
func sloServer(t *testing.T, interval time.Duration) (*httptest.Server, *alerting.Manager, *tsdb.DB) {
	t.Helper()
	opts := tsdb.DefaultOptions()
	opts.OutOfOrderTimeWindow = int64(24 * time.Hour / time.Millisecond)
	db, err := tsdb.Open(t.TempDir(), nil, nil, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	engine := promql.NewEngine(promql.EngineOpts{MaxSamples: 10_000_000, Timeout: time.Minute, LookbackDelta: 5 * time.Minute})
	mgr, err := alerting.New(alerting.Config{Interval: interval}, engine, db, db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mgr.Shutdown(context.Background()) })
	src := t.TempDir()
	example, err := os.ReadFile(filepath.Join("..", "slo", "testdata", "tickets-server-success-rate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "tickets.yaml"), example, 0o644); err != nil {
		t.Fatal(err)
	}
	reg, err := alerting.NewRegistry(alerting.RegistryConfig{Dir: filepath.Join(t.TempDir(), "slos"), SourceDirs: []string{src}}, mgr)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	RegisterSLOs(mux, reg, mgr)
	RegisterAlerts(mux, mgr)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, mgr, db
}

// writeIncident writes an hour of tickets-server span metrics ending now:
// 90 good and 10 failed calls of POST /:endpoint and 100 good calls of
// GET /:endpoint every 15 s, in two regions.
func writeIncident(t *testing.T, db *tsdb.DB) {
	t.Helper()
	end := time.Now()
	app := db.Appender(context.Background())
	add := func(span, status, region string, per float64) {
		l := labels.FromStrings("__name__", "traces_spanmetrics_calls_total", "service", "tickets-server",
			"span_kind", "SPAN_KIND_SERVER", "span_name", span, "status_code", status, "cloud_region", region)
		for i := 0; i <= 240; i++ {
			ts := end.Add(-time.Hour + time.Duration(i)*15*time.Second)
			if _, err := app.Append(0, l, ts.UnixMilli(), float64(i)*per); err != nil {
				t.Fatal(err)
			}
		}
	}
	add("POST /:endpoint", "STATUS_CODE_UNSET", "us-east-1", 90)
	add("POST /:endpoint", "STATUS_CODE_ERROR", "us-east-1", 10)
	add("GET /:endpoint", "STATUS_CODE_UNSET", "eu-west-1", 100)
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
}

// testClient keeps no idle connections, so no goroutine outlives a test.
var testClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// noLeaks checks for leaked goroutines after every cleanup of the test has
// run (it must be called first, as cleanups run last-in first-out).
func noLeaks(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

func do(t *testing.T, method, url, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestSLOEndpoints(t *testing.T) {
	noLeaks(t)
	srv, _, db := sloServer(t, time.Minute)
	writeIncident(t, db)
	u := srv.URL + "/api/v1/slos"

	f := func(method, url, body string, wantCode int, wantBody string) []byte {
		t.Helper()
		code, b := do(t, method, url, body)
		if code != wantCode || !strings.Contains(string(b), wantBody) {
			t.Errorf("%s %s: %d %s, want %d with %q", method, url, code, b, wantCode, wantBody)
		}
		return b
	}
	f("GET", u, "", 200, `"name":"tickets-server-success-rate"`)
	f("GET", u, "", 200, `"readOnly":true`)
	f("POST", u, "name: api-made\nobjective: 0.95\nsli: {successRate: {service: tickets-server}}\n", 201, `"name":"api-made"`)
	f("POST", u, `{"name":"api-made","objective":0.95,"sli":{"successRate":{"service":"x"}}}`, 409, "already exists")
	f("POST", u, "name: bad\nobjective: 95\nsli: {successRate: {service: x}}\n", 400, "objective: 95 must be a ratio in (0, 1), e.g. 0.99 for 99%")
	f("POST", u, "name: [", 400, `"errorType":"bad_data"`)
	f("PUT", u+"/api-made", `{"objective":0.9,"name":"api-made","sli":{"successRate":{"service":"tickets-server"}},"window":"7d"}`, 200, `"window":"7d"`)
	f("PUT", u+"/other", "name: api-made\nobjective: 0.9\nsli: {successRate: {service: x}}\n", 400, "differs from")
	f("PUT", u+"/tickets-server-success-rate", "name: tickets-server-success-rate\nobjective: 0.9\nsli: {successRate: {service: x}}\n", 409, "edit that file")
	f("DELETE", u+"/tickets-server-success-rate", "", 409, "conflict")
	f("DELETE", u+"/api-made", "", 200, "success")
	f("DELETE", u+"/api-made", "", 404, "not_found")
	f("GET", u+"/nope", "", 404, "not_found")
	f("GET", u+"/nope/rules", "", 404, "not_found")
	f("GET", u+"/tickets-server-success-rate?start=x", "", 400, "start:")

	// The rule file is what the slo package generates, and loads.
	b := f("GET", u+"/tickets-server-success-rate/rules", "", 200, "slo:sli_error:ratio_rate5m")
	if _, errs := rulefmt.Parse(b, false, model.UTF8Validation, parser.NewParser(parser.Options{}), promslog.NewNopLogger()); errs != nil {
		t.Errorf("exported rules do not load: %v", errs)
	}

	// Status over the data written: 10 of 200 calls per step fail.
	b = f("GET", u+"/tickets-server-success-rate", "", 200, `"noData":false`)
	var resp struct {
		Data struct {
			Name       string   `json:"name"`
			SLI        *float64 `json:"sli"`
			Objective  float64  `json:"objective"`
			ReadOnly   bool     `json:"readOnly"`
			Definition struct {
				GroupBy []string `json:"groupBy"`
			} `json:"definition"`
			ErrorBudget struct {
				ConsumedPercent *float64 `json:"consumedPercent"`
			} `json:"errorBudget"`
			BurnRates []struct {
				Window   string   `json:"window"`
				BurnRate *float64 `json:"burnRate"`
			} `json:"burnRates"`
			Alerts    []alerting.RuleState `json:"alerts"`
			Breakdown []alerting.Breakdown `json:"breakdown"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &resp); err != nil {
		t.Fatal(err)
	}
	d := resp.Data
	if d.Name != "tickets-server-success-rate" || d.SLI == nil || abs(*d.SLI-0.95) > 1e-9 || d.Objective != 0.99 || !d.ReadOnly {
		t.Errorf("status %s", b)
	}
	if d.ErrorBudget.ConsumedPercent == nil || abs(*d.ErrorBudget.ConsumedPercent-500) > 1e-6 {
		t.Errorf("consumed %v", d.ErrorBudget.ConsumedPercent)
	}
	if len(d.Breakdown) != 2 || d.Breakdown[0].Label != "cloud_region" || d.Breakdown[0].Values[0].Value != "us-east-1" ||
		d.Breakdown[1].Label != "span_name" || d.Breakdown[1].Values[0].Value != "POST /:endpoint" {
		t.Errorf("breakdown %+v", d.Breakdown)
	}
	if len(d.Alerts) != 2 || d.Alerts[0].Severity != "page" {
		t.Errorf("alert states %+v", d.Alerts)
	}
	if len(d.Definition.GroupBy) != 2 {
		t.Errorf("definition %+v", d.Definition)
	}
}

func TestAlertsEndpoint(t *testing.T) {
	noLeaks(t)
	srv, mgr, db := sloServer(t, 100*time.Millisecond)
	writeIncident(t, db)
	code, b := do(t, "GET", srv.URL+"/api/v1/alerts", "")
	if code != 200 || string(b) != `{"data":{"alerts":[]},"status":"success"}`+"\n" {
		t.Errorf("before start: %d %s", code, b)
	}
	if err := mgr.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	// 5% errors burn a 1% budget at 5x: the ticket alert (2.8x over 1d and
	// 2h) fires, the page (13.44x over 1h and 5m) does not.
	deadline := time.Now().Add(30 * time.Second)
	for len(mgr.Alerts()) == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	code, b = do(t, "GET", srv.URL+"/api/v1/alerts", "")
	var resp struct {
		Status string `json:"status"`
		Data   struct {
			Alerts []PromAlert `json:"alerts"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &resp); err != nil {
		t.Fatal(err)
	}
	if code != 200 || resp.Status != "success" || len(resp.Data.Alerts) != 1 {
		t.Fatalf("%d %s", code, b)
	}
	a := resp.Data.Alerts[0]
	if a.State != "firing" || a.Labels["severity"] != "ticket" || a.Labels["alertname"] != "SLOErrorBudgetBurn" ||
		a.Labels["slo"] != "tickets-server-success-rate" || a.ActiveAt == nil || a.Annotations["summary"] == "" {
		t.Errorf("alert %+v", a)
	}
	if v, err := parseFloat(a.Value); err != nil || abs(v-0.05) > 1e-6 {
		t.Errorf("value %q", a.Value)
	}
	if err := mgr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}

func parseFloat(s string) (float64, error) {
	var f float64
	err := json.Unmarshal([]byte(s), &f)
	return f, err
}
