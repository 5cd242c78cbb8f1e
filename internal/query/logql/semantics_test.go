package logql

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/trenchcoat/trenchcoat/internal/query/querytest"
	"github.com/trenchcoat/trenchcoat/internal/store"
)

var t0 = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

// allRows reads every row back: the raw data of the brute-force answers.
func allRows(t *testing.T, r store.LogReader) []store.LogRow {
	var rows []store.LogRow
	for row, err := range r.FindLogs(context.Background(), store.LogQuery{Start: t0.Add(-time.Hour), End: t0.Add(3 * time.Hour)}) {
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, row)
	}
	return rows
}

func bruteLogs(rows []store.LogRow, e *LogExpr, req LogRequest) []Stream {
	var kept []store.LogRow
	var labels []map[string]string
	sorted := append([]store.LogRow(nil), rows...)
	sort.SliceStable(sorted, func(i, j int) bool {
		if req.Backward {
			return sorted[i].Time > sorted[j].Time
		}
		return sorted[i].Time < sorted[j].Time
	})
	for i := range sorted {
		r := &sorted[i]
		if r.Time < req.Start.UnixNano() || r.Time >= req.End.UnixNano() {
			continue
		}
		if ls, ok := e.process(r, false); ok && len(kept) < req.Limit {
			kept = append(kept, *r)
			labels = append(labels, ls)
		}
	}
	streams := map[string]*Stream{}
	for i, r := range kept {
		k := labelsKey(labels[i])
		if streams[k] == nil {
			streams[k] = &Stream{Labels: labels[i]}
		}
		streams[k].Entries = append(streams[k].Entries, Entry{T: r.Time, Line: r.Body})
	}
	var out []Stream
	for _, k := range sortedKeys(streams) {
		out = append(out, *streams[k])
	}
	return out
}

func bruteMetric(rows []store.LogRow, m *MetricExpr, req MetricRequest) []Series {
	re := m.RangeExpr()
	series := map[string]*Series{}
	for i := range rows {
		r := &rows[i]
		ls, ok := re.Log.process(r, false)
		if !ok {
			continue
		}
		k := labelsKey(ls)
		s := series[k]
		if s == nil {
			s = &Series{Labels: ls}
			series[k] = s
		}
		for t := req.Start; !t.After(req.End); t = t.Add(req.Step) {
			if r.Time < t.Add(-re.Range).UnixNano() || r.Time >= t.UnixNano() {
				continue
			}
			v := 1.0
			if re.Func == FuncBytesOverTime || re.Func == FuncBytesRate {
				v = float64(len(r.Body))
			}
			if re.Func == FuncRate || re.Func == FuncBytesRate {
				v /= re.Range.Seconds()
			}
			if n := len(s.Points); n > 0 && s.Points[n-1].T == t.UnixNano() {
				s.Points[n-1].V += v
			} else {
				s.Points = append(s.Points, Point{T: t.UnixNano(), V: v})
			}
		}
	}
	var out []Series
	for _, k := range sortedKeys(series) {
		s := *series[k]
		// Points are added in time order per row, not across rows.
		sort.Slice(s.Points, func(i, j int) bool { return s.Points[i].T < s.Points[j].T })
		merged := s.Points[:0]
		for _, p := range s.Points {
			if n := len(merged); n > 0 && merged[n-1].T == p.T {
				merged[n-1].V += p.V
				continue
			}
			merged = append(merged, p)
		}
		s.Points = merged
		if len(s.Points) > 0 {
			out = append(out, s)
		}
	}
	out = applyVector(m, out)
	sort.SliceStable(out, func(i, j int) bool { return labelsKey(out[i].Labels) < labelsKey(out[j].Labels) })
	return out
}

var logQueries = []string{
	`{service_name="tickets-server"}`,
	`{service_name="tickets-server", cloud_availability_zone="us-east-1b"}`,
	`{service_name!="tickets-server"}`,
	`{service_name=~"tickets-(api|database)"}`,
	`{service_name!~"tickets-(api|database)"}`,
	`{cloud_availability_zone=""}`,
	`{cloud_availability_zone!=""}`,
	`{cloud_availability_zone=~"us-east-1[ab]|"}`,
	`{log_group="/ecs/tickets-server"}`,
	`{log_group=~"/aws/rds/.*"}`,
	`{log_group=~".+"} |= "FATAL"`,
	`{level="error"}`,
	`{level=~"error|fatal"}`,
	`{level!="info", cloud_region="us-east-1"}`,
	`{cloud_region="us-east-1"} |= "acquiring" != "status="`,
	`{cloud_region="us-east-1"} |~ "duration: [0-9]+\\.5"`,
	`{cloud_region="us-east-1"} !~ "status=(200|201)"`,
	`{cloud_region="us-east-1"} |~ "(?i)fatal"`,
	`{service_name="tickets-server"} | logfmt`,
	`{service_name="tickets-server"} | logfmt | status >= 500`,
	`{service_name="tickets-server"} | logfmt | status == 404 or status == 201`,
	`{service_name="tickets-server"} | logfmt | level_extracted="ERROR", waited_ms > 30500`,
	`{service_name="tickets-server"} | logfmt | msg =~ "pool.*"`,
	`{service_name="tickets-api"} | json`,
	`{service_name="tickets-api"} | json | req_status >= 400 and cold = "true"`,
	`{service_name="tickets-api"} | json | level_extracted = "WARN"`,
	`{service_name="tickets-api"} |= "invoke" | json | duration < 100`,
	`{service_name=~".+"} | json | __error__ != ""`,
	`{service_name="nope"}`,
}

var metricQueries = []string{
	`count_over_time({log_group=~".+"} |= "FATAL" [1m])`,
	`count_over_time({service_name="tickets-server"}[5m])`,
	`rate({service_name="tickets-server"}[2m])`,
	`bytes_over_time({log_group="/aws/lambda/tickets-api"}[3m])`,
	`bytes_rate({cloud_region="us-east-1"} |= "e" [1m])`,
	`sum(count_over_time({cloud_region="us-east-1"}[1m]))`,
	`sum by (level) (count_over_time({cloud_region="us-east-1"}[10m]))`,
	`sum by (service_name, cloud_availability_zone) (rate({cloud_region="us-east-1"} != "FATAL" [5m]))`,
	`count by (service_name) (count_over_time({cloud_region="us-east-1"}[5m]))`,
	`max by (log_group) (count_over_time({cloud_region="us-east-1"}[5m]))`,
	`min by (log_group) (bytes_over_time({cloud_region="us-east-1"}[5m]))`,
	`avg(count_over_time({level=~"warn|error"}[7m]))`,
	`sum(count by (level) (count_over_time({cloud_region="us-east-1"}[5m])))`,
	`sum by (status) (count_over_time({service_name="tickets-server"} | logfmt [5m]))`,
	`sum by (req_status) (rate({service_name="tickets-api"} | json | cold="true" [4m]))`,
	`count_over_time({service_name="tickets-server"} | logfmt | status >= 500 [10m])`,
	`sum(count_over_time({service_name="nope"}[1m]))`,
}

func runSemantics(t *testing.T, name string, r store.LogReader, rows []store.LogRow) {
	ctx := context.Background()
	start, end := t0.Add(5*time.Minute), t0.Add(55*time.Minute)
	t.Run(name+"/logs", func(t *testing.T) {
		for _, qs := range logQueries {
			q, err := Parse(qs)
			if err != nil {
				t.Fatalf("%s: %v", qs, err)
			}
			for _, req := range []LogRequest{
				{Start: start, End: end, Limit: 50, Backward: true},
				{Start: start, End: end, Limit: 1000000},
			} {
				want := bruteLogs(rows, q.Log, req)
				got, err := QueryLogs(ctx, r, q.Log, req, Limits{})
				if err != nil {
					t.Fatalf("%s: %v", qs, err)
				}
				if (len(got) > 0 || len(want) > 0) && !reflect.DeepEqual(got, want) {
					t.Errorf("%s (limit %d): %d streams, want %d%s", qs, req.Limit, len(got), len(want), diffStreams(got, want))
				}
				if len(want) == 0 && !strings.Contains(qs, "nope") {
					t.Errorf("%s: matches nothing in the dataset; the test is weak", qs)
				}
			}
		}
	})
	t.Run(name+"/metrics", func(t *testing.T) {
		for _, step := range []time.Duration{time.Minute, 150 * time.Second} {
			req := MetricRequest{Start: start, End: end, Step: step}
			for _, qs := range metricQueries {
				q, err := Parse(qs)
				if err != nil {
					t.Fatalf("%s: %v", qs, err)
				}
				want := bruteMetric(rows, q.Metric, req)
				got, err := QueryMetric(ctx, r, q.Metric, req, Limits{})
				if err != nil {
					t.Fatalf("%s: %v", qs, err)
				}
				if len(want) == 0 && !strings.Contains(qs, "nope") {
					t.Errorf("%s: no series in the dataset; the test is weak", qs)
				}
				if !equalSeries(got, want) {
					t.Errorf("%s step %s:\n got %s\nwant %s", qs, step, fmtSeries(got), fmtSeries(want))
				}
			}
		}
	})
}

func equalSeries(a, b []Series) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !reflect.DeepEqual(a[i].Labels, b[i].Labels) || len(a[i].Points) != len(b[i].Points) {
			return false
		}
		for j, p := range a[i].Points {
			q := b[i].Points[j]
			if p.T != q.T || p.V-q.V > 1e-9*max(1, q.V) || q.V-p.V > 1e-9*max(1, q.V) {
				return false
			}
		}
	}
	return true
}

func diffStreams(got, want []Stream) string {
	var b strings.Builder
	for i := 0; i < len(got) && i < len(want) && i < 3; i++ {
		if !reflect.DeepEqual(got[i], want[i]) {
			fmt.Fprintf(&b, "\n  stream %d: got %v (%d entries), want %v (%d entries)", i, got[i].Labels, len(got[i].Entries), want[i].Labels, len(want[i].Entries))
		}
	}
	return b.String()
}

func fmtSeries(ss []Series) string {
	var b strings.Builder
	for i, s := range ss {
		if i > 6 {
			b.WriteString("\n  ...")
			break
		}
		fmt.Fprintf(&b, "\n  %v:", s.Labels)
		for j, p := range s.Points {
			if j > 6 {
				b.WriteString(" ...")
				break
			}
			fmt.Fprintf(&b, " %g", p.V)
		}
	}
	return b.String()
}

func newMemStore(t *testing.T, unsupported func(*store.Cond) bool) *querytest.Store {
	s := querytest.New()
	s.Unsupported = unsupported
	if err := s.WriteLogs(context.Background(), querytest.GenLogs(1, 3000, t0, time.Hour)); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSemanticsMemStore(t *testing.T) {
	s := newMemStore(t, nil)
	rows := allRows(t, s)
	runSemantics(t, "pushdown", s, rows)
	runSemantics(t, "noregex", newMemStore(t, func(c *store.Cond) bool {
		return c.Op == store.OpRegex || c.Op == store.OpNotRegex || c.Op == store.OpContains
	}), rows)
	runSemantics(t, "nofilters", newMemStore(t, func(*store.Cond) bool { return true }), rows)
}

func TestVolumeAndLabels(t *testing.T) {
	ctx := context.Background()
	s := newMemStore(t, nil)
	rows := allRows(t, s)
	q, err := Parse(`{service_name="tickets-server"} |= "pool"`)
	if err != nil {
		t.Fatal(err)
	}
	start, end := t0, t0.Add(time.Hour)
	got, err := Volume(ctx, s, q.Log, start, end, 10*time.Minute, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[int64]float64{}
	for _, r := range rows {
		if r.Service != "tickets-server" || !strings.Contains(r.Body, "pool") {
			continue
		}
		b := start.Add((time.Duration(r.Time-start.UnixNano()) / (10 * time.Minute)) * 10 * time.Minute).UnixNano()
		if want[r.SeverityText] == nil {
			want[r.SeverityText] = map[int64]float64{}
		}
		want[r.SeverityText][b]++
	}
	gotm := map[string]map[int64]float64{}
	for _, s := range got {
		gotm[s.Labels[LabelLevel]] = map[int64]float64{}
		for _, p := range s.Points {
			gotm[s.Labels[LabelLevel]][p.T] = p.V
		}
	}
	if !reflect.DeepEqual(gotm, want) || len(want) == 0 {
		t.Errorf("volume: got %v, want %v", gotm, want)
	}
	// The parser path gives the same volume.
	q2, _ := Parse(`{service_name="tickets-server"} |= "pool" | logfmt | level =~ ".*"`)
	got2, err := Volume(ctx, s, q2.Log, start, end, 10*time.Minute, Limits{})
	if err != nil || !equalSeries(got, got2) {
		t.Errorf("volume via rows: %v %v", fmtSeries(got2), err)
	}

	names, err := LabelNames(ctx, s, start, end)
	if err != nil {
		t.Fatal(err)
	}
	wantNames := []string{"cloud_availability_zone", "cloud_region", "level", "log_group", "service_name"}
	if !reflect.DeepEqual(names, wantNames) {
		t.Errorf("labels: got %v, want %v", names, wantNames)
	}
	vals, err := LabelValues(ctx, s, "cloud_availability_zone", start, end, 10)
	if err != nil || len(vals) != 3 || !strings.HasPrefix(vals[0].Key, "us-east-1") {
		t.Errorf("values: %v %v", vals, err)
	}
	vals, err = LabelValues(ctx, s, "level", start, end, 2)
	if err != nil || len(vals) != 2 || vals[0].Key != "info" {
		t.Errorf("level values: %v %v", vals, err)
	}
}

func TestLimits(t *testing.T) {
	ctx := context.Background()
	s := newMemStore(t, nil)
	q, _ := Parse(`{cloud_region="us-east-1"} | logfmt`)
	_, err := QueryLogs(ctx, s, q.Log, LogRequest{Start: t0, End: t0.Add(time.Hour), Limit: 10000}, Limits{MaxRows: 100})
	if !errors.Is(err, store.ErrLimit) {
		t.Errorf("rows limit: %v", err)
	}
	m, _ := Parse(`count_over_time({cloud_region="us-east-1"}[1m])`)
	_, err = QueryMetric(ctx, s, m.Metric, MetricRequest{Start: t0, End: t0.Add(time.Hour), Step: time.Minute}, Limits{MaxSeries: 3})
	if !errors.Is(err, store.ErrLimit) {
		t.Errorf("series limit: %v", err)
	}
	_, err = QueryMetric(ctx, s, m.Metric, MetricRequest{Start: t0, End: t0.Add(time.Hour), Step: time.Millisecond}, Limits{})
	if !errors.Is(err, store.ErrLimit) {
		t.Errorf("points limit: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := QueryLogs(cctx, s, q.Log, LogRequest{Start: t0, End: t0.Add(time.Hour)}, Limits{}); err == nil {
		t.Errorf("cancelled context: no error")
	}
}
