package investigate

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/goleak"

	"github.com/trenchcoat/trenchcoat/internal/store/columnar"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// sp is one span of a constructed dataset.
type sp struct {
	trace, id, parent uint64
	service           string
	res               map[string]string
	name              string
	start             time.Time
	dur               time.Duration
	errMsg            string // non-empty: status error with this message
	attrs             map[string]string
}

type logLine struct {
	t        time.Time
	service  string
	group    string
	severity string
	body     string
}

// world collects spans and logs, then writes them into a real columnar
// store in a temp dir.
type world struct {
	spans []sp
	logs  []logLine
	next  uint64
	rng   *rand.Rand
	noise float64 // error probability outside incidents
}

func newWorld() *world { return &world{rng: rand.New(rand.NewPCG(1, 2)), noise: 0.005} }

func (w *world) id() uint64 { w.next++; return w.next }

// Spans and logs go to two stores: the columnar block cache keys
// sections by block file name, which the span and log tables share, so
// one store mixes them up after a flush (reported to the lead).
func (w *world) open(t testing.TB) (traces, logs *columnar.Store) {
	t.Helper()
	st, lst := openStore(t), openStore(t)
	ctx := context.Background()
	// Group spans by resource so each ResourceSpans holds many spans.
	byRes := map[string][]sp{}
	var keys []string
	for _, s := range w.spans {
		k := resKey(s.service, s.res)
		if _, ok := byRes[k]; !ok {
			keys = append(keys, k)
		}
		byRes[k] = append(byRes[k], s)
	}
	sort.Strings(keys)
	td := ptrace.NewTraces()
	for _, k := range keys {
		ss := byRes[k]
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", ss[0].service)
		for rk, rv := range ss[0].res {
			rs.Resource().Attributes().PutStr(rk, rv)
		}
		spans := rs.ScopeSpans().AppendEmpty().Spans()
		for _, s := range ss {
			x := spans.AppendEmpty()
			x.SetTraceID(traceID(s.trace))
			x.SetSpanID(spanID(s.id))
			if s.parent != 0 {
				x.SetParentSpanID(spanID(s.parent))
			}
			x.SetName(s.name)
			x.SetKind(ptrace.SpanKindInternal)
			x.SetStartTimestamp(pcommon.NewTimestampFromTime(s.start))
			x.SetEndTimestamp(pcommon.NewTimestampFromTime(s.start.Add(s.dur)))
			if s.errMsg != "" {
				x.Status().SetCode(ptrace.StatusCodeError)
				x.Status().SetMessage(s.errMsg)
			}
			for ak, av := range s.attrs {
				x.Attributes().PutStr(ak, av)
			}
		}
	}
	if err := st.WriteTraces(ctx, td); err != nil {
		t.Fatal(err)
	}
	if len(w.logs) > 0 {
		ld := plog.NewLogs()
		for _, l := range w.logs {
			rl := ld.ResourceLogs().AppendEmpty()
			rl.Resource().Attributes().PutStr("service.name", l.service)
			if l.group != "" {
				rl.Resource().Attributes().PutEmptySlice("aws.log.group.names").AppendEmpty().SetStr(l.group)
			}
			r := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
			r.SetTimestamp(pcommon.NewTimestampFromTime(l.t))
			r.SetSeverityText(l.severity)
			r.Body().SetStr(l.body)
		}
		if err := lst.WriteLogs(ctx, ld); err != nil {
			t.Fatal(err)
		}
	}
	st.Flush()
	lst.Flush()
	return st, lst
}

func openStore(t testing.TB) *columnar.Store {
	t.Helper()
	st, err := columnar.Open(columnar.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func resKey(svc string, res map[string]string) string {
	var parts []string
	for k, v := range res {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return svc + "|" + strings.Join(parts, ",")
}

func traceID(n uint64) pcommon.TraceID {
	var b [16]byte
	binary.BigEndian.PutUint64(b[8:], n)
	b[0] = 1
	return b
}

func spanID(n uint64) pcommon.SpanID {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], n)
	return b
}

// times returns the window [start, end) of 30 minutes ending a minute ago,
// with 30 minutes of baseline before it.
func times() (start, end time.Time) {
	end = time.Now().Truncate(time.Minute).Add(-time.Minute)
	return end.Add(-30 * time.Minute), end
}

// fakeMetrics implements Metrics over fixed series: a stand-in for the
// PromQL engine, which the lead wires in cmd.
type fakeMetrics struct{ series []Series }

func (f *fakeMetrics) FindSeries(_ context.Context, substr string, _, _ time.Time, limit int) ([]map[string]string, error) {
	var out []map[string]string
	for _, s := range f.series {
		for _, v := range s.Labels {
			if strings.Contains(v, substr) {
				out = append(out, s.Labels)
				break
			}
		}
	}
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (f *fakeMetrics) QueryRange(_ context.Context, q string, start, end time.Time, _ time.Duration) ([]Series, error) {
	for _, s := range f.series {
		if selector(s.Labels) == q {
			var pts []Point
			for _, p := range s.Points {
				if !p.T.Before(start) && !p.T.After(end) {
					pts = append(pts, p)
				}
			}
			return []Series{{Labels: s.Labels, Points: pts}}, nil
		}
	}
	return nil, nil
}

func findingsOf(rep *Report, check string) []Finding {
	var out []Finding
	for _, f := range rep.Findings {
		if f.Check == check {
			out = append(out, f)
		}
	}
	return out
}
