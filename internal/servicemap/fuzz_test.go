package servicemap_test

import (
	"context"
	"errors"
	"testing"

	"github.com/trenchcoat/trenchcoat/internal/servicemap/servicemaptest"
	"github.com/trenchcoat/trenchcoat/internal/store"
)

// FuzzServiceName: whatever the name (it comes from telemetry or a URL),
// the query runs and either finds the service or says it does not exist;
// it never fails to parse and never matches another service.
func FuzzServiceName(f *testing.F) {
	fx := servicemaptest.New(f)
	for _, s := range []string{"tickets-api", servicemaptest.Weird, `"`, `\`, `a"} or vector(1) or {b="`, "`", "\x00", "\xff\xfe", "tickets-api\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		d, err := fx.Map.Service(context.Background(), name, fx.Range, "")
		if errors.Is(err, store.ErrNotFound) {
			return
		}
		if err != nil {
			t.Fatalf("%q: %v", name, err)
		}
		if d.Name != name || len(d.Operations) == 0 {
			t.Fatalf("%q: got %q with %d operations", name, d.Name, len(d.Operations))
		}
		for _, known := range []string{"tickets-api", "tickets-server", "tickets-orders", servicemaptest.Weird} {
			if name == known {
				return
			}
		}
		t.Fatalf("%q found, but no such service was sent", name)
	})
}
