package traceql

import (
	"context"
	"testing"

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
	runSemantics(t, "head", s, ds)
	s.Flush()
	runSemantics(t, "blocks", s, ds)
}
