package servicemap_test

import (
	"context"
	"testing"

	"github.com/trenchcoat/trenchcoat/internal/servicemap/servicemaptest"
)

// The figures are a handful of PromQL queries plus span-store
// aggregations; these measure their fixed cost on the small fixture.
func BenchmarkServices(b *testing.B) {
	fx := servicemaptest.New(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := fx.Map.Services(context.Background(), fx.Range); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkService(b *testing.B) {
	fx := servicemaptest.New(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := fx.Map.Service(context.Background(), "tickets-server", fx.Range, "cloud.provider"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGraph(b *testing.B) {
	fx := servicemaptest.New(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := fx.Map.Graph(context.Background(), fx.Range); err != nil {
			b.Fatal(err)
		}
	}
}
