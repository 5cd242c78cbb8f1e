package demo

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
)

// recorder is an OTLP/gRPC server that keeps a digest of what arrives.
type recorder struct {
	addr string
	srv  *grpc.Server

	mu      sync.Mutex
	spans   []rspan
	logs    []rlog
	points  []rpoint
	digests []string // canonical lines of everything, for determinism checks
}

type rspan struct {
	service, name, kind, msg string
	err                      bool
	start, end               int64
	traceID, spanID, parent  string
	attrs                    map[string]string
	links                    int
}

type rlog struct {
	group, sevText, body string
	sev                  int
	t                    int64
}

type rpoint struct {
	name  string
	attrs map[string]string
	value float64
	t     int64
}

func newRecorder(t *testing.T) *recorder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{addr: ln.Addr().String(), srv: grpc.NewServer()}
	ptraceotlp.RegisterGRPCServer(r.srv, &traceSrv{r: r})
	plogotlp.RegisterGRPCServer(r.srv, &logSrv{r: r})
	pmetricotlp.RegisterGRPCServer(r.srv, &metricSrv{r: r})
	go func() { _ = r.srv.Serve(ln) }()
	t.Cleanup(r.srv.Stop)
	return r
}

func attrMap(m pcommon.Map) map[string]string {
	out := make(map[string]string, m.Len())
	for k, v := range m.All() {
		out[k] = v.AsString()
	}
	return out
}

func canon(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s,", k, m[k])
	}
	return b.String()
}

type traceSrv struct {
	ptraceotlp.UnimplementedGRPCServer
	r *recorder
}

func (s traceSrv) Export(_ context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	for _, rs := range req.Traces().ResourceSpans().All() {
		res := attrMap(rs.Resource().Attributes())
		rc := canon(res)
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				x := rspan{
					service: res["service.name"], name: sp.Name(), kind: sp.Kind().String(),
					msg: sp.Status().Message(), err: sp.Status().Code() == ptrace.StatusCodeError,
					start: int64(sp.StartTimestamp()), end: int64(sp.EndTimestamp()),
					traceID: sp.TraceID().String(), spanID: sp.SpanID().String(), parent: sp.ParentSpanID().String(),
					attrs: attrMap(sp.Attributes()), links: sp.Links().Len(),
				}
				s.r.spans = append(s.r.spans, x)
				s.r.digests = append(s.r.digests, fmt.Sprintf("S %s %s %s %s %s %d %d %s %s|%s|%d", x.traceID, x.spanID, x.parent, x.name, x.kind, x.start, x.end, x.msg, rc, canon(x.attrs), sp.Events().Len()))
			}
		}
	}
	return ptraceotlp.NewExportResponse(), nil
}

type logSrv struct {
	plogotlp.UnimplementedGRPCServer
	r *recorder
}

func (s logSrv) Export(_ context.Context, req plogotlp.ExportRequest) (plogotlp.ExportResponse, error) {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	for _, rl := range req.Logs().ResourceLogs().All() {
		group := ""
		if v, ok := rl.Resource().Attributes().Get("aws.log.group.names"); ok && v.Slice().Len() > 0 {
			group = v.Slice().At(0).Str()
		}
		for _, sl := range rl.ScopeLogs().All() {
			for _, lr := range sl.LogRecords().All() {
				x := rlog{group: group, sevText: lr.SeverityText(), body: lr.Body().AsString(), sev: int(lr.SeverityNumber()), t: int64(lr.Timestamp())}
				s.r.logs = append(s.r.logs, x)
				s.r.digests = append(s.r.digests, fmt.Sprintf("L %s %d %d %s", x.group, x.t, x.sev, x.body))
			}
		}
	}
	return plogotlp.NewExportResponse(), nil
}

type metricSrv struct {
	pmetricotlp.UnimplementedGRPCServer
	r *recorder
}

func (s metricSrv) Export(_ context.Context, req pmetricotlp.ExportRequest) (pmetricotlp.ExportResponse, error) {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	for _, rm := range req.Metrics().ResourceMetrics().All() {
		for _, sm := range rm.ScopeMetrics().All() {
			for _, m := range sm.Metrics().All() {
				for _, dp := range m.Gauge().DataPoints().All() {
					x := rpoint{name: m.Name(), attrs: attrMap(dp.Attributes()), value: dp.DoubleValue(), t: int64(dp.Timestamp())}
					if m.Unit() != "" {
						x.name += "!unit:" + m.Unit()
					}
					s.r.points = append(s.r.points, x)
					s.r.digests = append(s.r.digests, fmt.Sprintf("M %s %s %d %g", x.name, canon(x.attrs), x.t, x.value))
				}
			}
		}
	}
	return pmetricotlp.NewExportResponse(), nil
}

// snapshot copies what has arrived so far.
func (r *recorder) snapshot() ([]rspan, []rlog, []rpoint) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]rspan(nil), r.spans...), append([]rlog(nil), r.logs...), append([]rpoint(nil), r.points...)
}

func (r *recorder) digest() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	d := append([]string(nil), r.digests...)
	sort.Strings(d)
	return d
}
