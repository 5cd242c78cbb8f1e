package logql

import (
	"context"
	"testing"
	"time"

	"github.com/trenchcoat/trenchcoat/internal/query/querytest"
	"github.com/trenchcoat/trenchcoat/internal/store/columnar"
)

// TestSemanticsColumnar runs the brute-force comparison against the
// embedded engine, once from its head and once from flushed blocks. The
// raw rows come from the in-memory store, so that the engine's own row
// conversion is checked too.
func TestSemanticsColumnar(t *testing.T) {
	ld := querytest.GenLogs(1, 3000, t0, time.Hour)
	mem := querytest.New()
	if err := mem.WriteLogs(context.Background(), ld); err != nil {
		t.Fatal(err)
	}
	rows := allRows(t, mem)
	s, err := columnar.Open(columnar.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.WriteLogs(context.Background(), ld); err != nil {
		t.Fatal(err)
	}
	// Spans in the same partitions, so that the two tables' blocks coexist.
	if err := s.WriteTraces(context.Background(), querytest.GenTraces(1, 300, t0, time.Hour)); err != nil {
		t.Fatal(err)
	}
	runSemantics(t, "head", s, rows)
	s.Flush()
	runSemantics(t, "blocks", s, rows)
}
