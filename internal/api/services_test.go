package api

import (
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/trenchcoat/trenchcoat/internal/servicemap"
	"github.com/trenchcoat/trenchcoat/internal/servicemap/servicemaptest"
)

func newServiceServer(t *testing.T) (*httptest.Server, *servicemaptest.Fixture) {
	t.Helper()
	fx := servicemaptest.New(t)
	mux := http.NewServeMux()
	RegisterServices(mux, fx.Map)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, fx
}

func svcRange(fx *servicemaptest.Fixture) string {
	return "start=" + qUnix(fx.Range.Start) + "&end=" + qUnix(fx.Range.End)
}

func TestServicesAPI(t *testing.T) {
	srv, fx := newServiceServer(t)
	rate := float64(servicemaptest.Requests) / fx.Range.End.Sub(fx.Range.Start).Seconds()
	closeTo := func(what string, got servicemap.Num, want float64) {
		t.Helper()
		if math.Abs(float64(got)-want) > 1e-6 {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}

	var list struct {
		Status string               `json:"status"`
		Data   []servicemap.Service `json:"data"`
	}
	qGet(t, srv, "/api/v1/services?"+svcRange(fx)+"&step=5s", http.StatusOK, &list)
	if list.Status != "success" || len(list.Data) != 4 || list.Data[0].Name != "tickets-api" {
		t.Fatalf("services %+v", list)
	}
	api := list.Data[0]
	closeTo("rate", api.Rate, rate)
	closeTo("errorRatio", api.ErrorRatio, 0.05)
	closeTo("p50", api.P50, 0.096) // 75ms in the (64ms, 128ms] bucket
	if api.Platform != "Lambda" || api.Sparkline == nil || len(api.Sparkline.Times) != 4 {
		t.Errorf("tickets-api %+v", api)
	}

	var one struct {
		Data servicemap.ServiceDetail `json:"data"`
	}
	qGet(t, srv, "/api/v1/services/tickets-server?"+svcRange(fx)+"&groupBy=cloud.availability_zone", http.StatusOK, &one)
	if one.Data.Name != "tickets-server" || len(one.Data.Operations) != 3 || len(one.Data.Groups) != 1 ||
		one.Data.Groups[0].Value != "us-east-1a" || len(one.Data.Cloud["cloud.availability_zone"]) != 1 {
		t.Errorf("detail %+v", one.Data)
	}
	closeTo("p95", one.Data.P95, 0.0312) // 25ms in (16ms, 32ms]

	// The weird name, escaped in the path, reaches the service.
	one = struct {
		Data servicemap.ServiceDetail `json:"data"`
	}{}
	qGet(t, srv, "/api/v1/services/"+url.PathEscape(servicemaptest.Weird)+"?"+svcRange(fx), http.StatusOK, &one)
	if one.Data.Name != servicemaptest.Weird {
		t.Errorf("weird name %q", one.Data.Name)
	}
	closeTo("weird calls", one.Data.Calls, servicemaptest.WeirdSpans)

	qGet(t, srv, "/api/v1/services/nope?"+svcRange(fx), http.StatusNotFound, nil)
	qGet(t, srv, "/api/v1/services?start=abc", http.StatusBadRequest, nil)
	qGet(t, srv, "/api/v1/services?"+svcRange(fx)+"&step=-1", http.StatusBadRequest, nil)
	qGet(t, srv, "/api/v1/services?start=0&end=1000000&step=1ms", http.StatusBadRequest, nil)

	var g struct {
		Data servicemap.Graph `json:"data"`
	}
	qGet(t, srv, "/api/v1/service-graph?"+svcRange(fx), http.StatusOK, &g)
	found := false
	for _, n := range g.Data.Nodes {
		if n.ID == "tickets-database" {
			found = n.Type == "database"
			closeTo("database rate", n.Rate, rate)
		}
	}
	if !found || len(g.Data.Edges) != 6 {
		t.Errorf("graph %+v", g.Data)
	}
	for _, e := range g.Data.Edges {
		if e.Target == "tickets-database" {
			closeTo("db edge errorRatio", e.ErrorRatio, 0.05)
			closeTo("db edge p95", e.P95, 0.0078) // 5ms in (4ms, 8ms]
		}
	}
}
