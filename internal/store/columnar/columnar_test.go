package columnar

import (
	"context"
	"fmt"
	"math/rand"
	"sort"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/goleak"

	"github.com/trenchcoat/trenchcoat/internal/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var base = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

// genTraces builds n traces of 4 spans across 3 services and 3 zones, with
// every attribute type, events, links and errors.
func genTraces(seed int64, n int) ptrace.Traces {
	r := rand.New(rand.NewSource(seed))
	td := ptrace.NewTraces()
	zones := []string{"us-east-1a", "us-east-1b", "us-east-1c"}
	svcs := []string{"tickets-api", "tickets-server", "tickets-orders"}
	for i := 0; i < n; i++ {
		rs := td.ResourceSpans().AppendEmpty()
		rs.SetSchemaUrl("https://opentelemetry.io/schemas/1.26.0")
		ra := rs.Resource().Attributes()
		ra.PutStr("service.name", svcs[i%3])
		ra.PutStr("cloud.availability_zone", zones[r.Intn(3)])
		ra.PutInt("faas.max_memory", 512)
		ra.PutEmptySlice("aws.log.group.names").AppendEmpty().SetStr("/aws/lambda/x")
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName("scope")
		ss.Scope().SetVersion("1.0")
		ss.Scope().Attributes().PutBool("s", true)
		var tid pcommon.TraceID
		r.Read(tid[:])
		start := base.Add(time.Duration(r.Intn(3600)) * time.Second)
		var parent pcommon.SpanID
		for j := 0; j < 4; j++ {
			sp := ss.Spans().AppendEmpty()
			var sid pcommon.SpanID
			r.Read(sid[:])
			sp.SetTraceID(tid)
			sp.SetSpanID(sid)
			sp.SetParentSpanID(parent)
			parent = sid
			sp.SetName([]string{"POST /:endpoint", "request handler", "pg-pool.connect", "pg.connect"}[j])
			sp.SetKind(ptrace.SpanKind(j%5 + 1))
			st := start.Add(time.Duration(j) * time.Millisecond)
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(st))
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(st.Add(time.Duration(r.Intn(5000)) * time.Millisecond)))
			if r.Intn(4) == 0 {
				sp.Status().SetCode(ptrace.StatusCodeError)
				sp.Status().SetMessage("sorry, too many clients already")
			}
			sp.TraceState().FromRaw("a=b")
			sp.SetFlags(1)
			a := sp.Attributes()
			a.PutStr("http.route", "/:endpoint")
			a.PutInt("http.status_code", int64(200+r.Intn(4)*100))
			a.PutDouble("ratio", r.Float64())
			a.PutBool("cold", r.Intn(2) == 0)
			a.PutEmptyBytes("raw").FromRaw([]byte{0, 1, 2})
			m := a.PutEmptyMap("nested")
			m.PutStr("k", "v")
			m.PutEmptySlice("arr").AppendEmpty().SetInt(7)
			ev := sp.Events().AppendEmpty()
			ev.SetName("exception")
			ev.SetTimestamp(pcommon.NewTimestampFromTime(st))
			ev.Attributes().PutStr("exception.message", "boom")
			l := sp.Links().AppendEmpty()
			l.SetTraceID(tid)
			l.SetSpanID(sid)
			l.Attributes().PutStr("link", "x")
			sp.SetDroppedAttributesCount(3)
		}
	}
	return td
}

// byTrace splits td into per-trace Traces keyed by id, each with one
// resource per span, for comparison.
func spansByID(td ptrace.Traces) map[pcommon.SpanID]string {
	out := map[pcommon.SpanID]string{}
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		for j := 0; j < rs.ScopeSpans().Len(); j++ {
			ss := rs.ScopeSpans().At(j)
			for k := 0; k < ss.Spans().Len(); k++ {
				sp := ss.Spans().At(k)
				one := ptrace.NewTraces()
				nrs := one.ResourceSpans().AppendEmpty()
				rs.Resource().CopyTo(nrs.Resource())
				nrs.SetSchemaUrl(rs.SchemaUrl())
				nss := nrs.ScopeSpans().AppendEmpty()
				ss.Scope().CopyTo(nss.Scope())
				nss.SetSchemaUrl(ss.SchemaUrl())
				sp.CopyTo(nss.Spans().AppendEmpty())
				// Attribute order is not kept (attributes are a map); sort for comparison.
				nsp := nss.Spans().At(0)
				sortAttrs(nsp.Attributes())
				b, _ := (&ptrace.JSONMarshaler{}).MarshalTraces(one)
				out[sp.SpanID()] = string(b)
			}
		}
	}
	return out
}

func sortAttrs(m pcommon.Map) {
	keys := make([]string, 0, m.Len())
	m.Range(func(k string, _ pcommon.Value) bool { keys = append(keys, k); return true })
	sort.Strings(keys)
	tmp := pcommon.NewMap()
	m.CopyTo(tmp)
	m.Clear()
	for _, k := range keys {
		v, _ := tmp.Get(k)
		v.CopyTo(m.PutEmpty(k))
	}
}

func checkTrace(t *testing.T, s *Store, td ptrace.Traces) {
	t.Helper()
	want := spansByID(td)
	tid := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).TraceID()
	got, err := s.GetTrace(context.Background(), tid)
	if err != nil {
		t.Fatalf("GetTrace: %v", err)
	}
	gotSpans := spansByID(got)
	n := 0
	for id, w := range want {
		sp := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
		_ = sp
		if g, ok := gotSpans[id]; ok {
			n++
			if g != w {
				t.Fatalf("span %s differs:\n got %s\nwant %s", id, g, w)
			}
		}
	}
	if n != 4 {
		t.Fatalf("got %d of 4 spans of the trace", n)
	}
}

func TestRoundTripHeadBlockReplay(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	td := genTraces(1, 50)
	if err := s.WriteTraces(context.Background(), td); err != nil {
		t.Fatal(err)
	}
	first := ptrace.NewTraces()
	td.ResourceSpans().At(0).CopyTo(first.ResourceSpans().AppendEmpty())
	checkTrace(t, s, first) // from the head
	s.Flush()
	if st := s.Stats(); st.SpanBlocks == 0 || st.HeadRows != 0 {
		t.Fatalf("after flush: %+v", st)
	}
	checkTrace(t, s, first) // from a block
	td2 := genTraces(2, 10)
	if err := s.WriteTraces(context.Background(), td2); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	s, err = Open(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkTrace(t, s, first)
	second := ptrace.NewTraces()
	td2.ResourceSpans().At(3).CopyTo(second.ResourceSpans().AppendEmpty())
	checkTrace(t, s, second) // replayed from the WAL
	if st := s.Stats(); st.SpanRows != 40 {
		t.Fatalf("replayed %d rows, want 40", st.SpanRows)
	}
	var missing pcommon.TraceID
	missing[0] = 0xff
	if _, err := s.GetTrace(context.Background(), missing); err != store.ErrNotFound {
		t.Fatalf("missing trace: %v", err)
	}
}

// brute evaluates the test's conditions over raw spans.
type rawSpan struct {
	start int64
	dur   int64
	svc   string
	zone  string
	name  string
	err   bool
	code  int64
}

func rawSpans(td ptrace.Traces) []rawSpan {
	var out []rawSpan
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		svc, _ := rs.Resource().Attributes().Get("service.name")
		zone, _ := rs.Resource().Attributes().Get("cloud.availability_zone")
		sps := rs.ScopeSpans().At(0).Spans()
		for k := 0; k < sps.Len(); k++ {
			sp := sps.At(k)
			code, _ := sp.Attributes().Get("http.status_code")
			out = append(out, rawSpan{int64(sp.StartTimestamp()), int64(sp.EndTimestamp() - sp.StartTimestamp()), svc.Str(), zone.Str(), sp.Name(),
				sp.Status().Code() == ptrace.StatusCodeError, code.Int()})
		}
	}
	return out
}

func TestAggregateMatchesBruteForce(t *testing.T) {
	s, err := Open(Config{Dir: t.TempDir(), MaxHeadRows: 300})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var all []rawSpan
	for i := 0; i < 6; i++ {
		td := genTraces(int64(10+i), 100)
		all = append(all, rawSpans(td)...)
		if err := s.WriteTraces(context.Background(), td); err != nil {
			t.Fatal(err)
		}
	}
	s.Flush() // some data in blocks (cut at 300 rows), the rest flushed now
	s.Maintain()
	start, end, step := base.Add(10*time.Minute), base.Add(50*time.Minute), time.Minute
	f := func(name string, filter *store.Cond, match func(rawSpan) bool) {
		t.Helper()
		gs, err := s.AggregateSpans(context.Background(), store.Aggregate{Start: start, End: end, Step: step, Filter: filter,
			GroupBy: []store.Field{{Scope: store.ScopeResource, Name: "cloud.availability_zone"}}, Func: store.AggCount})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string][]float64{}
		for _, r := range all {
			if r.start < start.UnixNano() || r.start >= end.UnixNano() || !match(r) {
				continue
			}
			if want[r.zone] == nil {
				want[r.zone] = make([]float64, 40)
			}
			want[r.zone][(r.start-start.UnixNano())/int64(step)]++
		}
		if len(gs) != len(want) {
			t.Fatalf("%s: %d groups, want %d", name, len(gs), len(want))
		}
		for _, g := range gs {
			if fmt.Sprint(g.Counts) != fmt.Sprint(want[g.Labels[0]]) {
				t.Fatalf("%s: zone %s: got %v want %v", name, g.Labels[0], g.Counts, want[g.Labels[0]])
			}
		}
	}
	f("all", nil, func(rawSpan) bool { return true })
	f("errors", &store.Cond{Field: store.Field{Scope: store.ScopeIntrinsic, Name: store.IntrinsicStatus}, Value: store.Value{Kind: store.KindStatus, Str: "error"}},
		func(r rawSpan) bool { return r.err })
	f("service and slow", &store.Cond{And: []*store.Cond{
		{Field: store.Field{Scope: store.ScopeIntrinsic, Name: store.IntrinsicService}, Value: store.Value{Str: "tickets-server"}},
		{Field: store.Field{Scope: store.ScopeIntrinsic, Name: store.IntrinsicDuration}, Op: store.OpGt, Value: store.Value{Kind: store.KindDuration, Int: int64(2 * time.Second)}},
	}}, func(r rawSpan) bool { return r.svc == "tickets-server" && r.dur > int64(2*time.Second) })
	f("attr numeric or name regex", &store.Cond{Or: []*store.Cond{
		{Field: store.Field{Scope: store.ScopeSpan, Name: "http.status_code"}, Op: store.OpGe, Value: store.Value{Kind: store.KindInt, Int: 400}},
		{Field: store.Field{Scope: store.ScopeIntrinsic, Name: store.IntrinsicName}, Op: store.OpRegex, Value: store.Value{Str: "pg.*"}},
	}}, func(r rawSpan) bool { return r.code >= 400 || (len(r.name) > 2 && r.name[:2] == "pg") })
	f("not any-scope zone", &store.Cond{Not: &store.Cond{Field: store.Field{Scope: store.ScopeAny, Name: "cloud.availability_zone"}, Value: store.Value{Str: "us-east-1a"}}},
		func(r rawSpan) bool { return r.zone != "us-east-1a" })

	// Search: errored spans of one service.
	n := 0
	for row, err := range s.FindSpans(context.Background(), store.SpanQuery{Start: base, End: base.Add(2 * time.Hour), Filter: &store.Cond{And: []*store.Cond{
		{Field: store.Field{Scope: store.ScopeIntrinsic, Name: store.IntrinsicStatus}, Value: store.Value{Kind: store.KindStatus, Str: "error"}},
		{Field: store.Field{Scope: store.ScopeResource, Name: "service.name"}, Value: store.Value{Str: "tickets-api"}},
	}}}) {
		if err != nil {
			t.Fatal(err)
		}
		if row.Service != "tickets-api" || row.StatusCode != ptrace.StatusCodeError || row.Attributes["http.route"] != "/:endpoint" {
			t.Fatalf("bad row %+v", row)
		}
		n++
	}
	want := 0
	for _, r := range all {
		if r.err && r.svc == "tickets-api" {
			want++
		}
	}
	if n != want {
		t.Fatalf("FindSpans: %d rows, want %d", n, want)
	}
	vals, err := s.SpanAttributeValues(context.Background(), store.Field{Scope: store.ScopeIntrinsic, Name: store.IntrinsicService}, nil, base, base.Add(2*time.Hour), 10)
	if err != nil || len(vals) != 3 {
		t.Fatalf("values: %v %v", vals, err)
	}
}

func TestLogs(t *testing.T) {
	s, err := Open(Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "tickets-database")
	rl.Resource().Attributes().PutEmptySlice("aws.log.group.names").AppendEmpty().SetStr("/aws/rds/instance/tickets-database-abc123/postgresql")
	recs := rl.ScopeLogs().AppendEmpty().LogRecords()
	for i := 0; i < 100; i++ {
		lr := recs.AppendEmpty()
		lr.SetTimestamp(pcommon.NewTimestampFromTime(base.Add(time.Duration(i) * time.Second)))
		if i%10 == 0 {
			lr.SetSeverityText("FATAL")
			lr.Body().SetStr("FATAL:  sorry, too many clients already")
		} else {
			lr.SetSeverityText("LOG")
			lr.Body().SetStr("LOG:  checkpoint complete")
		}
		lr.Attributes().PutInt("i", int64(i))
	}
	if err := s.WriteLogs(context.Background(), ld); err != nil {
		t.Fatal(err)
	}
	for _, flush := range []bool{false, true} {
		if flush {
			s.Flush()
		}
		filter := &store.Cond{And: []*store.Cond{
			{Field: store.Field{Scope: store.ScopeIntrinsic, Name: store.IntrinsicLogGroup}, Op: store.OpRegex, Value: store.Value{Str: ".+"}},
			{Field: store.Field{Scope: store.ScopeIntrinsic, Name: store.IntrinsicBody}, Op: store.OpContains, Value: store.Value{Str: "FATAL"}},
		}}
		var got []store.LogRow
		for r, err := range s.FindLogs(context.Background(), store.LogQuery{Start: base, End: base.Add(time.Hour), Filter: filter, Backward: true, Limit: 5}) {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, r)
		}
		if len(got) != 5 || got[0].Time != base.Add(90*time.Second).UnixNano() || got[0].LogGroup == "" || got[0].Attributes["i"] != "90" {
			t.Fatalf("flush=%v: %+v", flush, got)
		}
		gs, err := s.AggregateLogs(context.Background(), store.Aggregate{Start: base, End: base.Add(time.Hour), Filter: filter,
			GroupBy: []store.Field{{Scope: store.ScopeIntrinsic, Name: store.IntrinsicSeverity}}})
		if err != nil || len(gs) != 1 || gs[0].Labels[0] != "fatal" || gs[0].Counts[0] != 10 {
			t.Fatalf("flush=%v: aggregate %+v %v", flush, gs, err)
		}
	}
}

// Span and log blocks have the same file names in their own folders; the
// shared section cache must not mix them up.
func TestSpanAndLogBlocksDoNotShareCacheEntries(t *testing.T) {
	s, err := Open(Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.WriteTraces(context.Background(), genTraces(1, 10)); err != nil {
		t.Fatal(err)
	}
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "db")
	lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.SetTimestamp(pcommon.NewTimestampFromTime(base.Add(time.Minute)))
	lr.Body().SetStr("hello")
	if err := s.WriteLogs(context.Background(), ld); err != nil {
		t.Fatal(err)
	}
	s.Flush()
	svc := []store.Field{{Scope: store.ScopeIntrinsic, Name: store.IntrinsicService}}
	q := store.Aggregate{Start: base, End: base.Add(2 * time.Hour), GroupBy: svc}
	if _, err := s.AggregateSpans(context.Background(), q); err != nil {
		t.Fatal(err)
	}
	gs, err := s.AggregateLogs(context.Background(), q)
	if err != nil || len(gs) != 1 || gs[0].Labels[0] != "db" || gs[0].Counts[0] != 1 {
		t.Fatalf("logs grouped by service after a span query: %+v %v", gs, err)
	}
}

// More than four group-by fields go through a composite key.
func TestAggregateManyGroupByFields(t *testing.T) {
	s, err := Open(Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	td := genTraces(7, 200)
	if err := s.WriteTraces(context.Background(), td); err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{}
	for _, r := range rawSpans(td) {
		st := "unset"
		if r.err {
			st = "error"
		}
		want[fmt.Sprint(r.svc, "|", r.zone, "|", r.name, "|", st, "|", r.code)]++
	}
	for _, flush := range []bool{false, true} {
		if flush {
			s.Flush()
		}
		gs, err := s.AggregateSpans(context.Background(), store.Aggregate{Start: base, End: base.Add(2 * time.Hour), GroupBy: []store.Field{
			{Scope: store.ScopeIntrinsic, Name: store.IntrinsicService},
			{Scope: store.ScopeResource, Name: "cloud.availability_zone"},
			{Scope: store.ScopeIntrinsic, Name: store.IntrinsicName},
			{Scope: store.ScopeIntrinsic, Name: store.IntrinsicStatus},
			{Scope: store.ScopeSpan, Name: "http.status_code"},
		}})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]float64{}
		for _, g := range gs {
			if len(g.Labels) != 5 {
				t.Fatalf("labels %q", g.Labels)
			}
			got[fmt.Sprint(g.Labels[0], "|", g.Labels[1], "|", g.Labels[2], "|", g.Labels[3], "|", g.Labels[4])] += g.Counts[0]
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("flush=%v:\n got %v\nwant %v", flush, got, want)
		}
	}
}

// Blocks whose newest row is older than the retention are deleted; above
// MaxBytes the oldest blocks go first, the newest stays.
func TestRetention(t *testing.T) {
	s, err := Open(Config{Dir: t.TempDir(), Retention: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// genTraces spreads spans over the hour after base: one block each.
	for i, at := range []time.Time{base.Add(-72 * time.Hour), base.Add(-2 * time.Hour), base} {
		td := genTraces(int64(i), 20)
		shift(td, at.Sub(base))
		if err := s.WriteTraces(context.Background(), td); err != nil {
			t.Fatal(err)
		}
		s.Flush()
	}
	if n := s.Stats().SpanBlocks; n < 3 {
		t.Fatalf("%d blocks before retention", n)
	}
	s.spans.applyRetention(base.Add(time.Hour))
	old, _ := s.AggregateSpans(context.Background(), store.Aggregate{Start: base.Add(-73 * time.Hour), End: base.Add(-70 * time.Hour)})
	if len(old) != 0 {
		t.Fatalf("spans past retention still readable: %+v", old)
	}
	recent, _ := s.AggregateSpans(context.Background(), store.Aggregate{Start: base.Add(-3 * time.Hour), End: base.Add(2 * time.Hour)})
	if len(recent) != 1 || recent[0].Counts[0] != 160 {
		t.Fatalf("recent spans: %+v", recent)
	}
	s.spans.cfg.MaxBytes = 1 // keep only the newest block
	s.spans.applyRetention(base.Add(time.Hour))
	left, _ := s.AggregateSpans(context.Background(), store.Aggregate{Start: base.Add(-3 * time.Hour), End: base.Add(2 * time.Hour)})
	if s.Stats().SpanBlocks != 1 || len(left) != 1 || left[0].Counts[0] >= 160 {
		t.Fatalf("size cap: %d blocks, %+v", s.Stats().SpanBlocks, left)
	}
}

func shift(td ptrace.Traces, d time.Duration) {
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sps := rss.At(i).ScopeSpans().At(0).Spans()
		for k := 0; k < sps.Len(); k++ {
			sp := sps.At(k)
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(sp.StartTimestamp().AsTime().Add(d)))
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(sp.EndTimestamp().AsTime().Add(d)))
		}
	}
}

// A query that took a block before compaction or retention removed it can
// still read it.
func TestRetiredBlockStaysReadable(t *testing.T) {
	s, err := Open(Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := 0; i < 2; i++ {
		if err := s.WriteTraces(context.Background(), genTraces(int64(i), 10)); err != nil {
			t.Fatal(err)
		}
		s.Flush()
	}
	_, blocks := s.spans.snapshot()
	s.spans.cfg.MaxBytes = 1
	s.spans.applyRetention(base) // removes the older block's file
	for _, b := range blocks {
		if _, err := b.viewAll(); err != nil {
			t.Fatalf("reading a retired block: %v", err)
		}
	}
}

// Compaction merges an ended partition's small blocks and leaves the
// partition being written alone.
func TestCompaction(t *testing.T) {
	s, err := Open(Config{Dir: t.TempDir(), MaxHeadRows: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var all []rawSpan
	for i := 0; i < 8; i++ {
		td := genTraces(int64(i), 25) // 100 spans: one block each
		all = append(all, rawSpans(td)...)
		if err := s.WriteTraces(context.Background(), td); err != nil {
			t.Fatal(err)
		}
		s.Flush()
	}
	if n := s.Stats().SpanBlocks; n != 8 {
		t.Fatalf("%d blocks before compaction, want 8", n)
	}
	s.spans.compact(base.Add(30 * time.Minute)) // the partition is still open
	if n := s.Stats().SpanBlocks; n != 8 {
		t.Fatalf("open partition compacted: %d blocks", n)
	}
	s.spans.compact(base.Add(2 * time.Hour))
	if n := s.Stats().SpanBlocks; n >= 8 {
		t.Fatalf("%d blocks after compaction", n)
	}
	gs, err := s.AggregateSpans(context.Background(), store.Aggregate{Start: base, End: base.Add(2 * time.Hour)})
	if err != nil || len(gs) != 1 || int(gs[0].Counts[0]) != len(all) {
		t.Fatalf("after compaction: %+v %v, want %d spans", gs, err, len(all))
	}
	first := ptrace.NewTraces()
	genTraces(3, 25).ResourceSpans().At(0).CopyTo(first.ResourceSpans().AppendEmpty())
	checkTrace(t, s, first)
}

// A block larger than one row group answers from every group.
func TestManyRowGroups(t *testing.T) {
	s, err := Open(Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	td := genTraces(42, groupRows/4+500) // 4 spans per trace: just over 1 group
	if err := s.WriteTraces(context.Background(), td); err != nil {
		t.Fatal(err)
	}
	s.Flush()
	_, blocks := s.spans.snapshot()
	if len(blocks) != 1 || len(blocks[0].groups) != 2 {
		t.Fatalf("want one block of two row groups, got %d blocks", len(blocks))
	}
	gs, err := s.AggregateSpans(context.Background(), store.Aggregate{Start: base, End: base.Add(2 * time.Hour)})
	if err != nil || int(gs[0].Counts[0]) != td.SpanCount() {
		t.Fatalf("count %+v %v, want %d", gs, err, td.SpanCount())
	}
	for _, i := range []int{0, 7000, td.ResourceSpans().Len() - 1} {
		one := ptrace.NewTraces()
		td.ResourceSpans().At(i).CopyTo(one.ResourceSpans().AppendEmpty())
		checkTrace(t, s, one)
	}
}
