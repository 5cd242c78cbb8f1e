package prom

import (
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
)

const prometheusBinary = "/usr/bin/prometheus"

// startPrometheus runs the real Prometheus (Debian's 2.42) with the
// remote-write receiver on a free loopback port, and returns its base URL.
func startPrometheus(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(prometheusBinary); err != nil {
		t.Skipf("side-by-side test needs %s (Debian package prometheus): %v", prometheusBinary, err)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte("global:\n  scrape_interval: 1h\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A free port: taken and released; the tiny race with another process
	// grabbing it in between is acceptable for a test.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	_ = lis.Close()

	cmd := exec.Command(prometheusBinary,
		"--config.file="+cfg,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--web.enable-remote-write-receiver",
		"--log.level=warn",
	)
	logf, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		_ = logf.Close()
	})
	base := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base
			}
		}
		select {
		case err := <-exited:
			log, _ := os.ReadFile(logf.Name())
			t.Fatalf("prometheus exited: %v\n%s", err, log)
		default:
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logf.Name())
			t.Fatalf("prometheus not ready after 30s\n%s", log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// testSeries is a series of the side-by-side data set, with a value
// function of the sample index.
type testSeries struct {
	labels []prompb.Label
	value  func(i int) float64
	upTo   int // samples only for i < upTo (0: all)
}

const (
	scrapeStep = 15 * time.Second
	samplesN   = 480 // 2 h at 15 s
)

func lbls(kv ...string) []prompb.Label {
	var out []prompb.Label
	for i := 0; i < len(kv); i += 2 {
		out = append(out, prompb.Label{Name: kv[i], Value: kv[i+1]})
	}
	slices.SortFunc(out, func(a, b prompb.Label) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// dataset: counters (one with a reset), gauges, classic histograms, a
// series that stops half way, over several label sets.
func dataset() []testSeries {
	var ss []testSeries
	instances := []string{"10.0.0.1:9100", "10.0.0.2:9100", "10.0.0.3:9100"}
	for ii, inst := range instances {
		for mi, method := range []string{"GET", "POST"} {
			for ci, code := range []string{"200", "500"} {
				rate := float64(1+ii) * float64(1+mi) * (1 + 9*float64(1-ci)) // 200s ten times the 500s
				ss = append(ss, testSeries{
					labels: lbls("__name__", "http_requests_total", "job", "api", "instance", inst, "method", method, "code", code),
					value: func(i int) float64 {
						v := rate*float64(i)*15 + 7*math.Sin(float64(i)/5)*float64(ci) + float64(i*i%7)
						if ii == 1 && mi == 0 && ci == 0 && i >= 300 { // a restart
							v = rate * float64(i-300) * 15
						}
						return math.Floor(v)
					},
				})
			}
		}
		ss = append(ss, testSeries{
			labels: lbls("__name__", "memory_bytes", "job", "api", "instance", inst),
			value: func(i int) float64 {
				return 4e8 + float64(ii)*1e8 + 2e8*math.Sin(float64(i)/40) + float64(i)*1e5
			},
		})
		// Classic histogram: cumulative buckets that grow at different speeds.
		bounds := []string{"0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf"}
		share := []float64{0.2, 0.45, 0.7, 0.85, 0.95, 0.99, 1}
		total := func(i int) float64 {
			return math.Floor(float64(i) * 10 * float64(ii+1) * (1 + 0.3*math.Sin(float64(i)/30)))
		}
		for bi, le := range bounds {
			ss = append(ss, testSeries{
				labels: lbls("__name__", "http_request_duration_seconds_bucket", "job", "api", "instance", inst, "le", le),
				value: func(i int) float64 {
					// Shares drift so quantiles move over time; monotonic across buckets.
					s := share[bi]
					if bi < len(share)-1 {
						s = s * (1 - 0.1*math.Sin(float64(i)/50)*float64(ii))
					}
					return math.Floor(total(i) * s)
				},
			})
		}
		ss = append(ss,
			testSeries{
				labels: lbls("__name__", "http_request_duration_seconds_count", "job", "api", "instance", inst),
				value:  total,
			},
			testSeries{
				labels: lbls("__name__", "http_request_duration_seconds_sum", "job", "api", "instance", inst),
				value:  func(i int) float64 { return total(i) * (0.2 + 0.05*float64(ii)) },
			},
		)
	}
	for qi, q := range []string{"a", "b"} {
		ss = append(ss, testSeries{
			labels: lbls("__name__", "queue_depth", "job", "worker", "queue", q),
			value:  func(i int) float64 { return float64((i/(3+qi))%9 + qi) },
		})
	}
	ss = append(ss, testSeries{
		labels: lbls("__name__", "batch_last_success", "job", "batch"),
		value:  func(i int) float64 { return float64(1_700_000_000 + i*15) },
		upTo:   samplesN / 2,
	})
	return ss
}

// pushDataset writes the data set to each URL in time order, ten minutes
// of every series per request: Prometheus 2.42 (no out-of-order support)
// refuses samples more than an hour behind its newest one.
func pushDataset(t *testing.T, base time.Time, urls ...string) {
	t.Helper()
	ss := dataset()
	const perReq = 40 // samples per series per request
	client := &http.Client{Timeout: 30 * time.Second}
	for from := 0; from < samplesN; from += perReq {
		req := &prompb.WriteRequest{}
		for _, s := range ss {
			ts := prompb.TimeSeries{Labels: s.labels}
			for i := from; i < from+perReq && i < samplesN; i++ {
				if s.upTo > 0 && i >= s.upTo {
					break
				}
				ts.Samples = append(ts.Samples, prompb.Sample{
					Value:     s.value(i),
					Timestamp: base.Add(time.Duration(i) * scrapeStep).UnixMilli(),
				})
			}
			if len(ts.Samples) > 0 {
				req.Timeseries = append(req.Timeseries, ts)
			}
		}
		for _, u := range urls {
			if code := remoteWrite(t, client, u, req); code/100 != 2 {
				t.Fatalf("remote write to %s: status %d", u, code)
			}
		}
	}
}

// sideBySideQueries exercise the engine over the data set; %d is replaced
// by a Unix time inside the data for the @ modifier.
var sideBySideQueries = []string{
	`http_requests_total`,
	`rate(http_requests_total[5m])`,
	`irate(http_requests_total[5m])`,
	`increase(http_requests_total[10m])`,
	`sum(rate(http_requests_total[5m]))`,
	`sum by (code) (rate(http_requests_total[5m]))`,
	`sum by (instance, method) (rate(http_requests_total[5m]))`,
	`sum without (instance) (rate(http_requests_total[5m]))`,
	`avg(rate(http_requests_total[1m]))`,
	`avg by (instance) (memory_bytes)`,
	`max by (job) (memory_bytes)`,
	`min(memory_bytes)`,
	`count(http_requests_total)`,
	`count by (code) (http_requests_total)`,
	`group by (job) (memory_bytes)`,
	`topk(3, rate(http_requests_total[5m]))`,
	`topk by (code) (1, http_requests_total)`,
	`bottomk(2, memory_bytes)`,
	`quantile(0.5, memory_bytes)`,
	`stddev(memory_bytes)`,
	`stdvar(queue_depth)`,
	`count_values("depth", queue_depth)`,
	`histogram_quantile(0.9, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))`,
	`histogram_quantile(0.5, sum by (le, instance) (rate(http_request_duration_seconds_bucket[5m])))`,
	`histogram_quantile(0.99, rate(http_request_duration_seconds_bucket[10m]))`,
	`histogram_quantile(0.75, sum by (le) (increase(http_request_duration_seconds_bucket[30m])))`,
	`rate(http_request_duration_seconds_sum[5m]) / rate(http_request_duration_seconds_count[5m])`,
	`increase(http_request_duration_seconds_count[1h])`,
	`http_requests_total offset 30m`,
	`rate(http_requests_total[5m] offset 1h)`,
	`sum(http_requests_total) - sum(http_requests_total offset 1h)`,
	`rate(http_requests_total{code="500"}[5m] @ %d)`,
	`max_over_time(memory_bytes[30m])`,
	`min_over_time(memory_bytes[30m])`,
	`avg_over_time(memory_bytes[15m])`,
	`sum_over_time(queue_depth[10m])`,
	`count_over_time(memory_bytes[10m])`,
	`stddev_over_time(memory_bytes[20m])`,
	`quantile_over_time(0.9, memory_bytes[30m])`,
	`last_over_time(batch_last_success[2h])`,
	`present_over_time(batch_last_success[30m])`,
	`max_over_time(rate(http_requests_total[5m])[30m:1m])`,
	`avg_over_time(sum(rate(http_requests_total[5m]))[20m:30s])`,
	`min_over_time(deriv(memory_bytes[10m])[1h:])`,
	`deriv(memory_bytes[10m])`,
	`predict_linear(memory_bytes[30m], 3600)`,
	`delta(queue_depth[10m])`,
	`idelta(queue_depth[5m])`,
	`changes(queue_depth[30m])`,
	`resets(http_requests_total[2h])`,
	`absent(nonexistent_metric{job="x"})`,
	`absent(http_requests_total{job="api"})`,
	`absent_over_time(batch_last_success[5m])`,
	`label_replace(memory_bytes, "host", "$1", "instance", "(.*):.*")`,
	`label_join(memory_bytes, "id", "-", "job", "instance")`,
	`memory_bytes > 5e8`,
	`memory_bytes > bool 5e8`,
	`queue_depth == 4`,
	`-memory_bytes`,
	`rate(http_requests_total{code="500"}[5m]) / ignoring(code) rate(http_requests_total{code="200"}[5m])`,
	`sum by (instance) (rate(http_requests_total{code="500"}[5m])) / sum by (instance) (rate(http_requests_total[5m]))`,
	`sum by (instance) (rate(http_requests_total[5m])) * on (instance) group_left (job) memory_bytes`,
	`http_requests_total and http_requests_total{code="200"}`,
	`http_requests_total or queue_depth`,
	`http_requests_total unless http_requests_total{method="GET"}`,
	`rate(http_requests_total[5m]) > 10 and on (instance) memory_bytes > 4e8`,
	`abs(delta(memory_bytes[5m]))`,
	`clamp_max(memory_bytes, 6e8)`,
	`clamp_min(queue_depth, 3)`,
	`round(memory_bytes / 1e6)`,
	`ceil(queue_depth / 3) + floor(queue_depth / 3)`,
	`exp(queue_depth / 10)`,
	`ln(queue_depth + 1)`,
	`sqrt(memory_bytes)`,
	`vector(1) + scalar(sum(queue_depth))`,
	`scalar(count(memory_bytes))`,
	`time() - timestamp(memory_bytes)`,
	`1 + 2 * 3`,
	`sort_desc(sum by (code) (http_requests_total))`,
}

// TestSideBySidePrometheus pushes the same series to the real Prometheus
// and to us by remote write, then runs every query of sideBySideQueries as
// an instant and as a range query on both and compares the results.
//
// Evaluation times sit 7 s off the 15 s sample grid: Prometheus 3 (our
// engine) made range selectors left-open, so a sample exactly on a window's
// left edge would count in 2.42 and not in ours. Off the grid, both see
// the same samples.
func TestSideBySidePrometheus(t *testing.T) {
	promURL := startPrometheus(t)
	ours := newServer(t, Config{})

	// Samples sit 7 s past the minute, so that subquery steps (aligned to
	// multiples of their step since the epoch) miss the sample grid too.
	base := time.Now().Add(-2*time.Hour - 5*time.Minute).Truncate(time.Minute).Add(7 * time.Second)
	pushDataset(t, base, promURL+"/api/v1/write", ours.srv.URL+"/api/v1/write")

	evalAt := base.Add(110*time.Minute + 7*time.Second)
	rangeStart := base.Add(20*time.Minute + 7*time.Second)
	rangeEnd := base.Add(118*time.Minute + 7*time.Second)
	at := base.Add(95*time.Minute + 7*time.Second).Unix()

	if len(sideBySideQueries) < 50 {
		t.Fatalf("only %d queries", len(sideBySideQueries))
	}
	for _, q := range sideBySideQueries {
		if strings.Contains(q, "%d") {
			q = fmt.Sprintf(q, at)
		}
		t.Run(q, func(t *testing.T) {
			inst := url.Values{"query": {q}, "time": {unixString(evalAt)}}
			compareResponses(t, "instant", promURL, ours.srv.URL, "/api/v1/query", inst)
			rng := url.Values{"query": {q}, "start": {unixString(rangeStart)}, "end": {unixString(rangeEnd)}, "step": {"45"}}
			compareResponses(t, "range", promURL, ours.srv.URL, "/api/v1/query_range", rng)
		})
	}

	// Metadata-free endpoints must agree too.
	compareResponses(t, "labels", promURL, ours.srv.URL, "/api/v1/labels", nil)
	compareResponses(t, "label values", promURL, ours.srv.URL, "/api/v1/label/instance/values", nil)
	compareResponses(t, "series", promURL, ours.srv.URL, "/api/v1/series", url.Values{"match[]": {`memory_bytes`, `queue_depth{queue="a"}`}})
}

func unixString(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', 3, 64)
}

func compareResponses(t *testing.T, what, promURL, oursURL, path string, params url.Values) {
	t.Helper()
	wantCode, want := get(t, promURL, path, params)
	gotCode, got := get(t, oursURL, path, params)
	if wantCode != gotCode || want.Status != got.Status || want.ErrorType != got.ErrorType {
		t.Fatalf("%s: prometheus %d %s %s %q, ours %d %s %s %q", what, wantCode, want.Status, want.ErrorType, want.Error,
			gotCode, got.Status, got.ErrorType, got.Error)
	}
	if want.Status != "success" {
		return
	}
	var wv, gv any
	if err := json.Unmarshal(want.Data, &wv); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(got.Data, &gv); err != nil {
		t.Fatal(err)
	}
	if diff := diffData(normalize(wv), normalize(gv)); diff != "" {
		t.Errorf("%s: results differ: %s\nprometheus: %.1500s\nours:       %.1500s", what, diff, want.Data, got.Data)
	}
}

// normalize sorts result lists by their series labels, so that order
// (which PromQL leaves unspecified except for sort functions) does not
// matter.
func normalize(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[k] = normalize(x)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = normalize(x)
		}
		slices.SortStableFunc(out, func(a, b any) int { return strings.Compare(sortKey(a), sortKey(b)) })
		return out
	}
	return v
}

func sortKey(v any) string {
	m, ok := v.(map[string]any)
	if !ok {
		if _, isList := v.([]any); isList {
			return "" // points keep their order
		}
		s, _ := json.Marshal(v)
		return string(s)
	}
	if metric, ok := m["metric"]; ok {
		s, _ := json.Marshal(metric) // encoding/json sorts map keys
		return string(s)
	}
	s, _ := json.Marshal(m)
	return string(s)
}

// diffData compares decoded JSON; strings that both parse as numbers are
// compared with a relative tolerance of 1e-9 (summation order differs
// between Prometheus versions).
func diffData(want, got any) string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok || len(g) != len(w) {
			return fmt.Sprintf("object %v vs %v", w, got)
		}
		for k, wx := range w {
			gx, ok := g[k]
			if !ok {
				return fmt.Sprintf("key %q missing", k)
			}
			if d := diffData(wx, gx); d != "" {
				return k + "." + d
			}
		}
		return ""
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return fmt.Sprintf("list of %d vs %v", len(w), lenOf(got))
		}
		for i := range w {
			if d := diffData(w[i], g[i]); d != "" {
				return fmt.Sprintf("[%d]%s", i, d)
			}
		}
		return ""
	case string:
		g, ok := got.(string)
		if !ok {
			return fmt.Sprintf("%q vs %v", w, got)
		}
		if w == g {
			return ""
		}
		wf, err1 := strconv.ParseFloat(w, 64)
		gf, err2 := strconv.ParseFloat(g, 64)
		if err1 == nil && err2 == nil && closeEnough(wf, gf) {
			return ""
		}
		return fmt.Sprintf("%q vs %q", w, g)
	case float64:
		g, ok := got.(float64)
		if !ok || !closeEnough(w, g) {
			return fmt.Sprintf("%v vs %v", w, got)
		}
		return ""
	}
	if fmt.Sprint(want) != fmt.Sprint(got) {
		return fmt.Sprintf("%v vs %v", want, got)
	}
	return ""
}

func lenOf(v any) any {
	if l, ok := v.([]any); ok {
		return len(l)
	}
	return v
}

func closeEnough(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	if a == b {
		return true
	}
	return math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b))
}
