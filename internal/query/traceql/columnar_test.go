package traceql

import (
	"context"
	"testing"
	"time"

	"github.com/trenchcoat/trenchcoat/internal/query/querytest"
	"github.com/trenchcoat/trenchcoat/internal/store/columnar"
)

// TestSemanticsColumnar runs the brute-force comparison against the
// embedded engine, once from its head and once from flushed blocks.
func TestSemanticsColumnar(t *testing.T) {
	ds := genDataset(600)
	s, err := columnar.Open(columnar.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.WriteTraces(context.Background(), ds.td); err != nil {
		t.Fatal(err)
	}
	// Logs in the same partitions, so that the two tables' blocks coexist.
	if err := s.WriteLogs(context.Background(), querytest.GenLogs(1, 2000, t0, time.Hour)); err != nil {
		t.Fatal(err)
	}
	runSemantics(t, "head", s, ds)
	s.Flush()
	runSemantics(t, "blocks", s, ds)
}
