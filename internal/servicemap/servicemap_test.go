package servicemap_test

import (
	"context"
	"encoding/json"
	"testing"

	"go.uber.org/goleak"

	"github.com/trenchcoat/trenchcoat/internal/servicemap/servicemaptest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestDump(t *testing.T) {
	fx := servicemaptest.New(t)
	ctx := context.Background()
	s, err := fx.Map.Services(ctx, fx.Range)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.MarshalIndent(s, "", " ")
	t.Logf("%s", b)
	d, err := fx.Map.Service(ctx, "tickets-server", fx.Range, "cloud.availability_zone")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = json.MarshalIndent(d, "", " ")
	t.Logf("%s", b)
	g, err := fx.Map.Graph(ctx, fx.Range)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = json.MarshalIndent(g, "", " ")
	t.Logf("%s", b)
}
