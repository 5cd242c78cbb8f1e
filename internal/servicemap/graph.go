package servicemap

import (
	"cmp"
	"context"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/trenchcoat/trenchcoat/internal/servicegraph"
)

// Node types.
const (
	NodeService  = "service"
	NodeDatabase = "database"
	NodeVirtual  = "virtual" // an uninstrumented peer, or the outside user
)

// Node is a service graph node. Services with span metrics carry their
// own figures; other nodes the figures of the requests they received.
type Node struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Type       string `json:"type"`
	Rate       Num    `json:"rate"`
	ErrorRatio Num    `json:"errorRatio"`
	Platform   string `json:"platform"`
}

// Edge is a client -> server pair. P95 (seconds) comes from the server
// side's histogram when the server is instrumented, else the client's.
type Edge struct {
	Source         string `json:"source"`
	Target         string `json:"target"`
	ConnectionType string `json:"connectionType"`
	Rate           Num    `json:"rate"`
	ErrorRatio     Num    `json:"errorRatio"`
	P95            Num    `json:"p95"`
}

// Graph is the service graph over a range.
type Graph struct {
	Nodes []Node `json:"nodes"`
	Edges []Edge `json:"edges"`
}

type edgeAcc struct {
	total, failed  float64
	server, client map[float64]float64
}

// Graph computes the service graph over rng.
func (m *Map) Graph(ctx context.Context, rng Range) (*Graph, error) {
	by := []string{"client", "server", "connection_type"}
	w := rng.window()
	edges := map[[3]string]*edgeAcc{}
	get := func(k [3]string) *edgeAcc {
		e := edges[k]
		if e == nil {
			e = &edgeAcc{server: map[float64]float64{}, client: map[float64]float64{}}
			edges[k] = e
		}
		return e
	}
	for _, q := range []struct {
		metric string
		add    func(e *edgeAcc, le string, v float64)
	}{
		{servicegraph.MetricRequests, func(e *edgeAcc, _ string, v float64) { e.total += v }},
		{servicegraph.MetricFailed, func(e *edgeAcc, _ string, v float64) { e.failed += v }},
		{servicegraph.MetricServerSeconds + "_bucket", func(e *edgeAcc, le string, v float64) { addBucket(e.server, le, v) }},
		{servicegraph.MetricClientSeconds + "_bucket", func(e *edgeAcc, le string, v float64) { addBucket(e.client, le, v) }},
	} {
		g := by
		if strings.HasSuffix(q.metric, "_bucket") {
			g = append(by[:3:3], "le")
		}
		vec, err := m.vector(ctx, sumIncrease(q.metric, w, g), rng.End)
		if err != nil {
			return nil, err
		}
		for _, s := range vec {
			k := [3]string{s.Metric.Get("client"), s.Metric.Get("server"), s.Metric.Get("connection_type")}
			q.add(get(k), s.Metric.Get("le"), s.F)
		}
	}

	svcs, err := m.totals(ctx, rng, []string{"service"})
	if err != nil {
		return nil, err
	}
	plat, err := m.platforms(ctx, rng)
	if err != nil {
		return nil, err
	}

	out := &Graph{Nodes: []Node{}, Edges: []Edge{}}
	type in struct{ total, failed float64 }
	// A node is a service when it has span metrics of its own; otherwise
	// a database when reached by a database call, else virtual (an
	// uninstrumented peer, or "user"). The edge's connection_type alone
	// cannot tell: root spans' edges from "user" are virtual_node edges
	// to instrumented services.
	nodeType := map[string]string{}
	incoming, outgoing := map[string]*in{}, map[string]*in{}
	see := func(n, t string) {
		if _, isSvc := svcs[n]; isSvc {
			t = NodeService
		}
		if cur, ok := nodeType[n]; !ok || cur == NodeVirtual {
			nodeType[n] = t
		}
	}
	for k, e := range edges {
		if e.total == 0 && e.failed == 0 {
			continue
		}
		client, server, conn := k[0], k[1], k[2]
		see(client, NodeVirtual)
		if conn == servicegraph.ConnDatabase {
			see(server, NodeDatabase)
		} else {
			see(server, NodeVirtual)
		}
		if incoming[server] == nil {
			incoming[server] = &in{}
		}
		incoming[server].total += e.total
		incoming[server].failed += e.failed
		if outgoing[client] == nil {
			outgoing[client] = &in{}
		}
		outgoing[client].total += e.total
		outgoing[client].failed += e.failed
		h := e.server
		if count(h) == 0 {
			h = e.client
		}
		p95 := Num(math.NaN())
		if count(h) > 0 {
			p95 = quantile(0.95, h)
		}
		out.Edges = append(out.Edges, Edge{Source: client, Target: server, ConnectionType: conn,
			Rate: Num(e.total / w.Seconds()), ErrorRatio: ratio(e.failed, e.total), P95: p95})
	}
	// Services seen only in span metrics (no edges) are nodes too.
	for _, g := range svcs {
		see(g.labels[0], NodeService)
	}
	for name, t := range nodeType {
		n := Node{ID: name, Name: name, Type: t, Platform: platformName(plat[name])}
		if g := svcs[name]; g != nil && t == NodeService {
			f := g.figures(0, g.class(), w)
			n.Rate, n.ErrorRatio = f.Rate, f.ErrorRatio
		} else if i := incoming[name]; i != nil {
			n.Rate, n.ErrorRatio = Num(i.total/w.Seconds()), ratio(i.failed, i.total)
		} else if o := outgoing[name]; o != nil {
			// A pure client ("user"): what it sent.
			n.Rate, n.ErrorRatio = Num(o.total/w.Seconds()), ratio(o.failed, o.total)
		} else {
			n.ErrorRatio = Num(math.NaN())
		}
		out.Nodes = append(out.Nodes, n)
	}
	slices.SortFunc(out.Nodes, func(a, b Node) int { return strings.Compare(a.ID, b.ID) })
	slices.SortFunc(out.Edges, func(a, b Edge) int {
		return cmp.Or(strings.Compare(a.Source, b.Source), strings.Compare(a.Target, b.Target), strings.Compare(a.ConnectionType, b.ConnectionType))
	})
	return out, nil
}

func addBucket(b map[float64]float64, le string, v float64) {
	ub, err := strconv.ParseFloat(le, 64)
	if err == nil {
		b[ub] += v
	}
}

// count is the +Inf bucket of cumulative buckets.
func count(b map[float64]float64) float64 { return b[math.Inf(1)] }
