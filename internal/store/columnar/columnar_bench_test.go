package columnar

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/trenchcoat/trenchcoat/internal/spangen"
	"github.com/trenchcoat/trenchcoat/internal/store"
)

// BenchmarkBlockBytesPerSpan writes unique demo-shaped spans and reports
// the bytes per span of the blocks cut from them.
func BenchmarkBlockBytesPerSpan(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		s, err := Open(Config{Dir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		now := time.Now()
		for r := 0; r < 200; r++ {
			if err := s.WriteTraces(context.Background(), spangen.Spans(int64(r), 1000, now)); err != nil {
				b.Fatal(err)
			}
		}
		s.Flush()
		st := s.Stats()
		b.ReportMetric(float64(st.SpanBlockBytes)/float64(st.SpanRows), "bytes/span")
		s.Close()
	}
}

// BenchmarkWriteTraces measures WAL + head append of 1,000-span batches.
func BenchmarkWriteTraces(b *testing.B) {
	s, err := Open(Config{Dir: b.TempDir(), MaxHeadRows: 1 << 30, MaxHeadBytes: 1 << 40})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	batches := make([]ptrace.Traces, 16)
	for i := range batches {
		batches[i] = spangen.Spans(int64(i), 1000, time.Now())
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.WriteTraces(context.Background(), batches[i%len(batches)]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "spans/s")
}

// BenchmarkAggregateErrorsByZone: errors by availability zone at 60 s
// steps over an hour, on 1,000,000 spans in blocks.
func BenchmarkAggregateErrorsByZone(b *testing.B) {
	s, err := Open(Config{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	now := time.Now()
	for r := 0; r < 1000; r++ {
		if err := s.WriteTraces(context.Background(), spangen.Spans(int64(r), 1000, now)); err != nil {
			b.Fatal(err)
		}
	}
	s.Flush()
	q := store.Aggregate{Start: now.Add(-time.Hour), End: now.Add(time.Minute), Step: time.Minute,
		Filter:  &store.Cond{Field: store.Field{Scope: store.ScopeIntrinsic, Name: store.IntrinsicStatus}, Value: store.Value{Kind: store.KindStatus, Str: "error"}},
		GroupBy: []store.Field{{Scope: store.ScopeResource, Name: "cloud.availability_zone"}}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.AggregateSpans(context.Background(), q); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(1_000_000*b.N)/b.Elapsed().Seconds(), "spans/s")
}
