package investigate

import (
	"context"
	"fmt"
	"math"
	"net"
	"sort"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/trenchcoat/trenchcoat/internal/store"
)

// checkErrors localises the errors: per service and operation, the error
// rate in the window against the baseline's, for operations whose errors
// are many and clearly above their usual rate.
func (v *inv) checkErrors(ctx context.Context) error {
	by := []store.Field{fService, fName}
	win, err := v.d.cfg.Traces.AggregateSpans(ctx, store.Aggregate{Start: v.start, End: v.end, GroupBy: append(by, fStatus)})
	if err != nil {
		return err
	}
	base, err := v.d.cfg.Traces.AggregateSpans(ctx, store.Aggregate{Start: v.bstart, End: v.bend, GroupBy: append(by, fStatus)})
	if err != nil {
		return err
	}
	type cnt struct{ err, tot, berr, btot float64 }
	ops := map[[2]string]*cnt{}
	get := func(k [2]string) *cnt {
		if ops[k] == nil {
			ops[k] = &cnt{}
		}
		return ops[k]
	}
	var allErr float64
	for _, g := range win {
		c := get([2]string{g.Labels[0], g.Labels[1]})
		n := sum(g.Counts)
		c.tot += n
		if g.Labels[2] == "error" {
			c.err += n
			allErr += n
		}
	}
	for _, g := range base {
		c := get([2]string{g.Labels[0], g.Labels[1]})
		n := sum(g.Counts)
		c.btot += n
		if g.Labels[2] == "error" {
			c.berr += n
		}
	}
	keys := make([][2]string, 0, len(ops))
	for k := range ops {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := ops[keys[i]], ops[keys[j]]
		if a.err != b.err {
			return a.err > b.err
		}
		return keys[i][0]+keys[i][1] < keys[j][0]+keys[j][1]
	})
	n := 0
	for _, k := range keys {
		c := ops[k]
		if c.err < 5 || c.tot == 0 {
			continue
		}
		rate := c.err / c.tot
		brate := 0.0
		if c.btot > 0 {
			brate = c.berr / c.btot
		}
		if rate < 0.01 || rate < 2*brate+0.005 {
			continue // the usual errors of this operation, not the incident
		}
		share := c.err / allErr
		score := clamp01(0.3 + 0.4*share + 0.3*clamp01(rate*5))
		if k[0] != v.service && v.service != "" {
			score *= 0.8
		}
		q := fmt.Sprintf("{ %s && name = %q && status = error }", traceQLService(k[0]), k[1])
		v.add(Finding{
			Check: CheckErrors,
			Title: fmt.Sprintf("%s %q fails %s of the time", k[0], k[1], pct(rate)),
			Summary: fmt.Sprintf("%s: %.0f of %.0f spans of %q in error (%s), against %s in the baseline; %s of all errors in the window.",
				k[0], c.err, c.tot, k[1], pct(rate), pct(brate), pct(share)),
			Score: score,
			Evidence: []Evidence{
				{Kind: "number", Label: "error rate", Value: pct(rate)},
				{Kind: "number", Label: "baseline error rate", Value: pct(brate)},
				{Kind: "number", Label: "error spans", Value: fmt.Sprint(c.err)},
				{Kind: "query", Label: "error spans", Query: q},
			},
			Link:  v.tracesLink(q),
			Facts: map[string]string{"service": k[0], "operation": k[1]},
		})
		if n++; n == 5 {
			break
		}
	}
	return nil
}

// skipAttr lists attributes whose values identify single requests or are
// duplicates of intrinsics; comparing them tells nothing.
func skipAttr(key string) bool {
	switch key {
	case "service.name", "http.url", "url.full", "db.statement", "db.query.text", "http.target", "url.path",
		"thread.id", "thread.name", "code.lineno", "exception.stacktrace", "exception.message":
		return true
	}
	return strings.HasSuffix(key, ".id") && !strings.HasPrefix(key, "cloud.")
}

// checkAttributes compares, for the implicated service, the share of each
// attribute value among its error spans with its share among all its
// spans (BubbleUp): lift = share among errors / share overall; coverage =
// share of the errors that carry the value.
func (v *inv) checkAttributes(ctx context.Context) error {
	if v.service == "" || !v.elevated() {
		return nil
	}
	svc := condService(v.service)
	type cand struct {
		f               store.Field
		val             string
		lift, cov, rate float64
		errs            float64
		card            int // distinct values of the key
	}
	var cands []cand
	for _, scope := range []store.Scope{store.ScopeResource, store.ScopeSpan} {
		keys, err := v.d.cfg.Traces.SpanAttributeKeys(ctx, scope, v.start, v.end)
		if err != nil {
			return err
		}
		sort.Slice(keys, func(i, j int) bool {
			return keys[i].Count > keys[j].Count || (keys[i].Count == keys[j].Count && keys[i].Key < keys[j].Key)
		})
		if len(keys) > 40 {
			keys = keys[:40]
		}
		for _, k := range keys {
			if skipAttr(k.Key) {
				continue
			}
			f := store.Field{Scope: scope, Name: k.Key}
			// One query per key: values by status. More than 100 values
			// (or ErrLimit) is an identifier, not a dimension.
			gs, err := v.d.cfg.Traces.AggregateSpans(ctx, store.Aggregate{Start: v.start, End: v.end, Filter: svc, GroupBy: []store.Field{f, fStatus}, MaxSeries: 300})
			if err != nil {
				continue
			}
			tot, errByVal := map[string]float64{}, map[string]float64{}
			var vals []string
			for _, g := range gs {
				c := sum(g.Counts)
				if _, ok := tot[g.Labels[0]]; !ok {
					vals = append(vals, g.Labels[0])
				}
				tot[g.Labels[0]] += c
				if g.Labels[1] == "error" {
					errByVal[g.Labels[0]] += c
				}
			}
			if len(tot) > 100 {
				continue
			}
			sort.Strings(vals)
			for _, val := range vals {
				if val == "" {
					continue
				}
				e := errByVal[val]
				t := tot[val]
				if t == 0 || v.errWin == 0 {
					continue
				}
				cov := e / v.errWin
				share := t / v.totWin
				lift := cov / share
				if e >= 5 && cov >= 0.5 && lift >= 1.5 && share < 0.95 {
					cands = append(cands, cand{f: f, val: val, lift: lift, cov: cov, rate: e / t, errs: e, card: len(tot)})
				}
			}
		}
	}
	sort.Slice(cands, func(i, j int) bool {
		si, sj := cands[i].cov*math.Log2(cands[i].lift), cands[j].cov*math.Log2(cands[j].lift)
		if si != sj {
			return si > sj
		}
		return cands[i].f.String()+cands[i].val < cands[j].f.String()+cands[j].val
	})
	for i, c := range cands {
		if i == 8 {
			break
		}
		q := fmt.Sprintf("{ %s && %s = %q && status = error }", traceQLService(v.service), c.f.String(), c.val)
		v.add(Finding{
			Check:   CheckAttributes,
			Title:   fmt.Sprintf("%s = %s is over-represented in errors (lift %.1f)", c.f.String(), c.val, c.lift),
			Summary: fmt.Sprintf("%s of %s's error spans carry %s = %q (coverage), %.1f times its share of all spans (lift); its spans fail %s of the time.", pct(c.cov), v.service, c.f.String(), c.val, c.lift, pct(c.rate)),
			Score:   clamp01(0.2 + 0.3*c.cov*clamp01(math.Log2(c.lift)/3)),
			Evidence: []Evidence{
				{Kind: "number", Label: "coverage", Value: pct(c.cov)},
				{Kind: "number", Label: "lift", Value: fmt.Sprintf("%.2f", c.lift)},
				{Kind: "query", Label: "error spans with the value", Query: q},
			},
			Link:  v.tracesLink(q),
			Facts: map[string]string{"key": c.f.Name, "scope": c.f.String(), "value": c.val, "cardinality": fmt.Sprint(c.card)},
		})
	}
	return nil
}

// checkMessages clusters the status messages of error spans into
// templates and reports those that are new or grew against the baseline.
func (v *inv) checkMessages(ctx context.Context) error {
	count := func(start, end time.Time) (map[string]float64, map[string]string, map[string]map[string]bool, error) {
		gs, err := v.d.cfg.Traces.AggregateSpans(ctx, store.Aggregate{Start: start, End: end, Filter: condError(), GroupBy: []store.Field{fStatusMessage, fService}, MaxSeries: 5000})
		if err != nil {
			return nil, nil, nil, err
		}
		out, ex, svcs := map[string]float64{}, map[string]string{}, map[string]map[string]bool{}
		for _, g := range gs {
			if g.Labels[0] == "" {
				continue
			}
			t := Template(g.Labels[0])
			out[t] += sum(g.Counts)
			if _, ok := ex[t]; !ok || g.Labels[0] < ex[t] {
				ex[t] = g.Labels[0]
			}
			if svcs[t] == nil {
				svcs[t] = map[string]bool{}
			}
			svcs[t][g.Labels[1]] = true
		}
		return out, ex, svcs, nil
	}
	win, ex, svcs, err := count(v.start, v.end)
	if err != nil {
		return err
	}
	base, _, _, err := count(v.bstart, v.bend)
	if err != nil {
		return err
	}
	var total float64
	for _, c := range win {
		total += c
	}
	type tc struct {
		t string
		c float64
	}
	var list []tc
	for t, c := range win {
		if c < 5 || c < 3*base[t]+2 {
			continue
		}
		list = append(list, tc{t, c})
	}
	sort.Slice(list, func(i, j int) bool { return list[i].c > list[j].c || (list[i].c == list[j].c && list[i].t < list[j].t) })
	for i, x := range list {
		if i == 8 {
			break
		}
		var ss []string
		for s := range svcs[x.t] {
			ss = append(ss, s)
		}
		sort.Strings(ss)
		share := x.c / total
		q := fmt.Sprintf("{ status = error && statusMessage =~ %q }", regexQuote(ex[x.t]))
		v.add(Finding{
			Check:   CheckMessages,
			Title:   fmt.Sprintf("Error message %q (%.0f spans)", ex[x.t], x.c),
			Summary: fmt.Sprintf("%.0f error spans (%s of error spans in the window, %.0f in the baseline) in %s say %q.", x.c, pct(share), base[x.t], strings.Join(ss, ", "), x.t),
			Score:   clamp01(0.3 + 0.5*share),
			Evidence: []Evidence{
				{Kind: "number", Label: "spans", Value: fmt.Sprint(x.c)},
				{Kind: "number", Label: "baseline spans", Value: fmt.Sprint(base[x.t])},
				{Kind: "query", Label: "spans with the message", Query: q},
			},
			Link:  v.tracesLink(q),
			Facts: map[string]string{"template": x.t, "example": ex[x.t], "count": fmt.Sprint(x.c), "services": strings.Join(ss, ",")},
		})
	}
	return nil
}

func regexQuote(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`\.+*?()|[]{}^$`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// checkRootCause reads a sample of errored traces of the implicated
// service and finds in each the deepest spans in error whose children are
// not: where the error started rather than where it was passed on.
func (v *inv) checkRootCause(ctx context.Context) error {
	if v.service == "" || !v.elevated() {
		return nil
	}
	ids := map[pcommon.TraceID]bool{}
	var order []pcommon.TraceID
	for row, err := range v.d.cfg.Traces.FindSpans(ctx, store.SpanQuery{Start: v.start, End: v.end, Filter: and(condService(v.service), condError()), Limit: v.d.cfg.MaxRows}) {
		if err != nil {
			return err
		}
		if !ids[row.TraceID] {
			ids[row.TraceID] = true
			order = append(order, row.TraceID)
		}
	}
	// Deterministic sample: the smallest trace ids.
	sort.Slice(order, func(i, j int) bool { return string(order[i][:]) < string(order[j][:]) })
	if len(order) > v.d.cfg.TraceSample {
		order = order[:v.d.cfg.TraceSample]
	}
	type agg struct {
		service, name string
		traces        int
		deps          map[string]int
		addr, sys, db map[string]int
		msgs          map[string]int
		sample        string
	}
	groups := map[string]*agg{}
	for _, id := range order {
		td, err := v.d.cfg.Traces.GetTrace(ctx, id)
		if err != nil {
			continue
		}
		for _, rc := range rootCauses(td) {
			k := rc.service + "\x00" + rc.name
			g := groups[k]
			if g == nil {
				g = &agg{service: rc.service, name: rc.name, deps: map[string]int{}, addr: map[string]int{}, sys: map[string]int{}, db: map[string]int{}, msgs: map[string]int{}, sample: id.String()}
				groups[k] = g
			}
			g.traces++
			if rc.dep != "" {
				g.deps[rc.dep]++
			}
			if rc.addr != "" {
				g.addr[rc.addr]++
			}
			if rc.sys != "" {
				g.sys[rc.sys]++
			}
			if rc.db != "" {
				g.db[rc.db]++
			}
			if rc.msg != "" {
				g.msgs[Template(rc.msg)]++
			}
		}
	}
	var list []*agg
	for _, g := range groups {
		list = append(list, g)
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].traces != list[j].traces {
			return list[i].traces > list[j].traces
		}
		return list[i].service+list[i].name < list[j].service+list[j].name
	})
	for i, g := range list {
		if i == 5 || g.traces < 2 {
			break
		}
		share := float64(g.traces) / float64(len(order))
		dep := dependency{Service: g.service, ID: top(g.deps), Address: top(g.addr), System: top(g.sys), DB: top(g.db), Span: g.service + " " + g.name, Count: g.traces}
		for m := range g.msgs {
			dep.Messages = append(dep.Messages, m)
		}
		sort.Strings(dep.Messages)
		v.deps = append(v.deps, dep)
		title := fmt.Sprintf("Errors start in %s %q", g.service, g.name)
		if dep.ID != "" {
			title += " calling " + dep.ID
		}
		q := fmt.Sprintf("{ %s && name = %q && status = error }", traceQLService(g.service), g.name)
		ev := []Evidence{
			{Kind: "number", Label: "errored traces where it is the root-cause span", Value: fmt.Sprintf("%d of %d", g.traces, len(order))},
			{Kind: "trace", Label: "sample trace", Value: g.sample},
			{Kind: "query", Label: "root-cause spans", Query: q},
		}
		facts := map[string]string{"service": g.service, "operation": g.name}
		if dep.ID != "" {
			ev = append(ev, Evidence{Kind: "number", Label: "dependency", Value: dep.ID})
			facts["resource"] = dep.ID
		}
		if dep.Address != "" {
			facts["address"] = dep.Address
		}
		if dep.System != "" {
			facts["system"] = dep.System
		}
		if tm := topInt(g.msgs); tm != "" {
			facts["template"] = tm
			ev = append(ev, Evidence{Kind: "number", Label: "commonest message", Value: tm})
		}
		v.add(Finding{
			Check:    CheckRootCause,
			Title:    title,
			Summary:  fmt.Sprintf("In %d of %d sampled errored traces of %s the deepest span in error is %s %q%s.", g.traces, len(order), v.service, g.service, g.name, depText(dep)),
			Score:    clamp01(0.4 + 0.5*share),
			Evidence: ev,
			Link:     "/traces/" + g.sample,
			Facts:    facts,
		})
	}
	return nil
}

func depText(d dependency) string {
	if d.ID == "" {
		return ""
	}
	s := ", which calls " + d.ID
	if d.System != "" {
		s += " (" + d.System
		if d.DB != "" {
			s += ", database " + d.DB
		}
		s += ")"
	}
	return s
}

func top(m map[string]int) string { return topInt(m) }

func topInt(m map[string]int) string {
	best, n := "", 0
	for k, c := range m {
		if c > n || (c == n && k < best) {
			best, n = k, c
		}
	}
	return best
}

type rootCause struct {
	service, name, msg string
	dep, addr, sys, db string
}

type node struct {
	span     ptrace.Span
	service  string
	res      pcommon.Map
	children []*node
	parent   *node
}

// rootCauses returns the spans in error none of whose children are in
// error, with the dependency each calls: from its own attributes, else its
// descendants' (a pool span whose child connects), else its ancestors'.
func rootCauses(td ptrace.Traces) []rootCause {
	byID := map[pcommon.SpanID]*node{}
	var all []*node
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		svc := ""
		if s, ok := rs.Resource().Attributes().Get("service.name"); ok {
			svc = s.AsString()
		}
		for j := 0; j < rs.ScopeSpans().Len(); j++ {
			ss := rs.ScopeSpans().At(j).Spans()
			for k := 0; k < ss.Len(); k++ {
				n := &node{span: ss.At(k), service: svc, res: rs.Resource().Attributes()}
				byID[n.span.SpanID()] = n
				all = append(all, n)
			}
		}
	}
	for _, n := range all {
		if p := byID[n.span.ParentSpanID()]; p != nil && p != n {
			n.parent = p
			p.children = append(p.children, n)
		}
	}
	var out []rootCause
	seen := map[string]bool{}
	for _, n := range all {
		if n.span.Status().Code() != ptrace.StatusCodeError {
			continue
		}
		childErr := false
		for _, c := range n.children {
			if c.span.Status().Code() == ptrace.StatusCodeError {
				childErr = true
				break
			}
		}
		if childErr {
			continue
		}
		rc := rootCause{service: n.service, name: n.span.Name(), msg: n.span.Status().Message()}
		if rc.msg == "" {
			rc.msg = exceptionMessage(n.span)
		}
		for _, src := range depSources(n) {
			// A server span's server.address is its own endpoint, not
			// something it calls.
			if k := src.span.Kind(); k == ptrace.SpanKindServer || k == ptrace.SpanKindConsumer {
				continue
			}
			if rc.dep == "" {
				rc.dep, rc.addr, rc.sys, rc.db = depOf(src.span.Attributes())
			}
		}
		// One per service+name per trace: a retry loop should not outvote
		// the other traces.
		k := rc.service + "\x00" + rc.name
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, rc)
	}
	return out
}

func depSources(n *node) []*node {
	out := []*node{n}
	var walk func(*node, int)
	// A descendant names the dependency only if the span was still
	// waiting on it when it failed (it ends with the span): a query that
	// finished long before a handler threw is not the cause.
	end, dur := n.span.EndTimestamp(), n.span.EndTimestamp()-n.span.StartTimestamp()
	walk = func(x *node, depth int) {
		if depth > 3 {
			return
		}
		for _, c := range x.children {
			if c.span.EndTimestamp()+dur/10+pcommon.Timestamp(time.Millisecond) < end {
				continue
			}
			out = append(out, c)
			walk(c, depth+1)
		}
	}
	walk(n, 0)
	// Ancestors in the same service may hold the call's attributes (an
	// ORM span above a driver span); ancestors in another service are
	// the callers, and what they call is this service.
	for p, i := n.parent, 0; p != nil && i < 2 && p.service == n.service; p, i = p.parent, i+1 {
		out = append(out, p)
	}
	return out
}

func exceptionMessage(s ptrace.Span) string {
	for i := 0; i < s.Events().Len(); i++ {
		e := s.Events().At(i)
		if e.Name() == "exception" {
			msg := ""
			if t, ok := e.Attributes().Get("exception.type"); ok {
				msg = t.AsString()
			}
			if m, ok := e.Attributes().Get("exception.message"); ok {
				if msg != "" {
					msg += ": "
				}
				msg += m.AsString()
			}
			return msg
		}
	}
	return ""
}

// depOf names the dependency a span calls, by semantic conventions. The
// identifier is the first DNS label of the server address (cloud endpoints
// start with the instance identifier), else peer.service, else the
// database name.
func depOf(a pcommon.Map) (id, addr, sys, db string) {
	get := func(keys ...string) string {
		for _, k := range keys {
			if v, ok := a.Get(k); ok && v.AsString() != "" {
				return v.AsString()
			}
		}
		return ""
	}
	addr = get("server.address", "net.peer.name", "net.sock.peer.addr", "db.connection_string")
	sys = get("db.system.name", "db.system", "messaging.system", "rpc.system")
	db = get("db.namespace", "db.name")
	peer := get("peer.service")
	// A call names its callee more precisely than its endpoint's host
	// (lambda.us-east-1.amazonaws.com is every function).
	named := get("faas.invoked_name", "messaging.destination.name")
	switch {
	case named != "":
		id = named
	case addr != "":
		id = hostIdentifier(addr)
	case peer != "":
		id = peer
	case db != "":
		id = db
	}
	return id, addr, sys, db
}

// hostIdentifier reduces "name-1a2b3c.xyz.us-east-1.rds.amazonaws.com:5432"
// or "postgres://u@host:5432/db" to its first label; IP addresses stay whole.
func hostIdentifier(addr string) string {
	if i := strings.Index(addr, "://"); i >= 0 {
		addr = addr[i+3:]
		if j := strings.LastIndex(addr, "@"); j >= 0 {
			addr = addr[j+1:]
		}
		if j := strings.IndexAny(addr, "/?"); j >= 0 {
			addr = addr[:j]
		}
	}
	if h, _, err := net.SplitHostPort(addr); err == nil {
		addr = h
	}
	if net.ParseIP(addr) != nil {
		return addr
	}
	if i := strings.IndexByte(addr, '.'); i > 0 {
		return addr[:i]
	}
	return addr
}
