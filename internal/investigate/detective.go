// Package investigate is the detective: given an SLO or a service and a
// time range, it runs independent checks over spans, logs and metrics,
// scores what each finds against a baseline window, and combines the
// findings into a ranked causal story. It reads only through the store
// interfaces and an optional Metrics interface, so it works on any backend.
// It is deterministic for the same data: no randomness, no network.
package investigate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"sort"
	"sync"
	"time"

	"github.com/trenchcoat/trenchcoat/internal/store"
)

// Request says what to investigate. Service may be empty when SLO has been
// resolved to nothing; the detective then investigates the service with the
// most errors in the window.
type Request struct {
	SLO     string    `json:"slo,omitempty"`
	Service string    `json:"service,omitempty"`
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
}

// Evidence is one piece of support for a finding. Kind is "query",
// "number", "trace" or "log"; Query, when set, reproduces it.
type Evidence struct {
	Kind  string `json:"kind"`
	Label string `json:"label"`
	Value string `json:"value"`
	Query string `json:"query,omitempty"`
}

// Finding is what one check found. Score is in [0, 1]: how strongly it
// points at the cause of the incident. Facts carries machine-readable
// values the diagnosis combines (e.g. "resource", "template").
type Finding struct {
	Check    string            `json:"check"`
	Title    string            `json:"title"`
	Summary  string            `json:"summary"`
	Score    float64           `json:"score"`
	Evidence []Evidence        `json:"evidence,omitempty"`
	Link     string            `json:"link,omitempty"`
	Facts    map[string]string `json:"facts,omitempty"`
}

// Report is the result of an investigation.
type Report struct {
	ID        string    `json:"id"`
	Request   Request   `json:"request"`
	Findings  []Finding `json:"findings"`
	Diagnosis string    `json:"diagnosis"`
	Cause     string    `json:"cause,omitempty"`
	Resource  string    `json:"resource,omitempty"`
	// Story is the causal chain, most fundamental cause first.
	Story     []string `json:"story,omitempty"`
	NextSteps []string `json:"nextSteps,omitempty"`
	Errors    []string `json:"errors,omitempty"` // checks that failed, with why
	// Onset is when the service's errors began, when the detective could
	// tell; the baseline is the window the incident is compared with (the
	// same length, before the onset when the window starts inside it).
	Onset         *time.Time `json:"onset,omitempty"`
	BaselineStart time.Time  `json:"baselineStart"`
	BaselineEnd   time.Time  `json:"baselineEnd"`
	// Checks says how long each check took, in the order they ran.
	Checks   []CheckRun `json:"checks,omitempty"`
	Started  time.Time  `json:"started"`
	Finished time.Time  `json:"finished"`
}

// CheckRun is one check's run: its name and how long it took.
type CheckRun struct {
	Name   string  `json:"name"`
	Millis float64 `json:"ms"`
}

// Check names.
const (
	CheckErrors     = "errors"
	CheckAttributes = "attributes"
	CheckMessages   = "messages"
	CheckRootCause  = "root-cause"
	CheckDurations  = "durations"
	CheckLogs       = "logs"
	CheckMetrics    = "metrics"
	CheckChanges    = "changes"
)

// Config wires the detective. Traces is required; Logs and Metrics may be
// nil, and their checks are then skipped.
type Config struct {
	Traces  store.TraceReader
	Logs    store.LogReader
	Metrics Metrics
	Logger  *slog.Logger
	// TraceSample bounds how many errored traces the root-cause check
	// reads; default 50.
	TraceSample int
	// MaxRows bounds rows read per FindSpans/FindLogs scan; default 20000.
	MaxRows int
}

// Detective runs investigations. Safe for concurrent use.
type Detective struct {
	cfg Config
	log *slog.Logger
}

// New returns a detective over the given readers.
func New(cfg Config) *Detective {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.TraceSample <= 0 {
		cfg.TraceSample = 50
	}
	if cfg.MaxRows <= 0 {
		cfg.MaxRows = 20000
	}
	return &Detective{cfg: cfg, log: cfg.Logger}
}

// inv is the state of one investigation, shared by the checks. Checks run
// in dependency order: later ones use what earlier ones implicated (the
// service, the dependency), which is how the detective follows a lead.
type inv struct {
	d                *Detective
	req              Request
	start, end       time.Time // the window
	bstart, bend     time.Time // the baseline
	onset            time.Time // when the service's errors began; zero if unknown
	service          string    // the implicated service
	deps             []dependency
	errWin, totWin   float64 // error and total spans of service in the window
	errBase, totBase float64
	mu               sync.Mutex
	findings         []Finding
	errs             []string
}

type dependency struct {
	ID       string // resource identifier (first label of server.address, peer.service, ...)
	Address  string
	System   string
	DB       string
	Span     string // service + span name of the root-cause span
	Service  string // service of the root-cause span
	Count    int
	Messages []string
}

// Investigate runs every check over req and returns the report. It fails
// only when the request is invalid or the trace store cannot be read at
// all; a failing check is reported in Report.Errors.
func (d *Detective) Investigate(ctx context.Context, req Request) (*Report, error) {
	if d.cfg.Traces == nil {
		return nil, errors.New("investigate: no trace reader configured")
	}
	if req.End.IsZero() {
		req.End = time.Now()
	}
	if req.Start.IsZero() {
		req.Start = req.End.Add(-time.Hour)
	}
	if !req.Start.Before(req.End) {
		return nil, fmt.Errorf("investigate: start %s is not before end %s", req.Start, req.End)
	}
	rep := &Report{ID: newID(), Request: req, Started: time.Now().UTC()}
	v := &inv{d: d, req: req, start: req.Start, end: req.End}
	v.bend = req.Start
	v.bstart = req.Start.Add(-req.End.Sub(req.Start))

	t0 := time.Now()
	if err := v.pickService(ctx); err != nil {
		return nil, err
	}
	rep.Checks = append(rep.Checks, CheckRun{Name: "onset", Millis: float64(time.Since(t0).Microseconds()) / 1000})
	if !v.onset.IsZero() {
		on := v.onset.UTC()
		rep.Onset = &on
	}
	rep.BaselineStart, rep.BaselineEnd = v.bstart.UTC(), v.bend.UTC()
	type step struct {
		name string
		fn   func(context.Context) error
	}
	steps := []step{
		{CheckErrors, v.checkErrors},
		{CheckAttributes, v.checkAttributes},
		{CheckMessages, v.checkMessages},
		{CheckRootCause, v.checkRootCause},
		{CheckDurations, v.checkDurations},
		{CheckChanges, v.checkChanges},
		{CheckLogs, v.checkLogs},
		{CheckMetrics, v.checkMetrics},
	}
	for _, s := range steps {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		t0 := time.Now()
		if err := s.fn(ctx); err != nil {
			d.log.Warn("investigation check failed", "check", s.name, "err", err)
			v.errs = append(v.errs, s.name+": "+err.Error())
		}
		took := time.Since(t0)
		rep.Checks = append(rep.Checks, CheckRun{Name: s.name, Millis: float64(took.Microseconds()) / 1000})
		d.log.Debug("investigation check done", "check", s.name, "took", took)
	}
	sort.SliceStable(v.findings, func(i, j int) bool { return v.findings[i].Score > v.findings[j].Score })
	rep.Findings = v.findings
	if rep.Findings == nil {
		rep.Findings = []Finding{}
	}
	rep.Errors = v.errs
	v.diagnose(rep)
	rep.Finished = time.Now().UTC()
	return rep, nil
}

func (v *inv) add(f Finding) {
	v.mu.Lock()
	v.findings = append(v.findings, f)
	v.mu.Unlock()
}

// pickService settles the service under investigation: the requested one,
// or the one with the most error spans in the window.
func (v *inv) pickService(ctx context.Context) error {
	if v.req.Service != "" {
		v.service = v.req.Service
	} else {
		gs, err := v.d.cfg.Traces.AggregateSpans(ctx, store.Aggregate{Start: v.start, End: v.end, Filter: condError(), GroupBy: []store.Field{fService}})
		if err != nil {
			return fmt.Errorf("investigate: %w", err)
		}
		best := 0.0
		for _, g := range gs {
			if c := sum(g.Counts); c > best || (c == best && g.Labels[0] < v.service) {
				best, v.service = c, g.Labels[0]
			}
		}
	}
	if v.service == "" {
		return nil
	}
	if err := v.settleBaseline(ctx); err != nil {
		return fmt.Errorf("investigate: %w", err)
	}
	var err error
	if v.errWin, v.totWin, err = v.rates(ctx, v.start, v.end, condService(v.service)); err != nil {
		return fmt.Errorf("investigate: %w", err)
	}
	if v.errBase, v.totBase, err = v.rates(ctx, v.bstart, v.bend, condService(v.service)); err != nil {
		return fmt.Errorf("investigate: %w", err)
	}
	if !v.elevated() {
		v.onset = time.Time{} // a wobble of the usual errors, not an onset
	}
	return nil
}

func (v *inv) rates(ctx context.Context, start, end time.Time, f *store.Cond) (errs, total float64, err error) {
	gs, err := v.d.cfg.Traces.AggregateSpans(ctx, store.Aggregate{Start: start, End: end, Filter: f, GroupBy: []store.Field{fStatus}})
	if err != nil {
		return 0, 0, err
	}
	for _, g := range gs {
		c := sum(g.Counts)
		total += c
		if g.Labels[0] == "error" {
			errs += c
		}
	}
	return errs, total, nil
}

// elevated reports whether the service's errors in the window stand out:
// enough of them, and a rate clearly above the baseline's.
func (v *inv) elevated() bool {
	if v.errWin < 5 || v.totWin == 0 {
		return false
	}
	rw := v.errWin / v.totWin
	if v.totBase == 0 {
		return rw >= 0.01
	}
	rb := v.errBase / v.totBase
	// A small rate counts when the baseline is clean: a canary failing
	// half its requests is 1% of a busy service's spans.
	return rw >= 0.002 && rw >= 2*rb+0.002
}

// settleBaseline finds when the service's errors began (the onset) from
// its error rate over the window and a lookback of four windows before
// it. When the window starts inside the incident, the default baseline
// (the same length just before the window) would be part of the incident
// too, so the baseline moves to the same length before the onset.
func (v *inv) settleBaseline(ctx context.Context) error {
	l := v.end.Sub(v.start)
	step := max(l/30, 10*time.Second)
	look := v.start.Add(-4 * l)
	gs, err := v.d.cfg.Traces.AggregateSpans(ctx, store.Aggregate{Start: look, End: v.end, Step: step, Filter: condService(v.service), GroupBy: []store.Field{fStatus}})
	if err != nil {
		return err
	}
	n := int((v.end.Sub(look) + step - 1) / step)
	errs, tot := make([]float64, n), make([]float64, n)
	for _, g := range gs {
		for i, c := range g.Counts {
			if i >= n {
				break
			}
			tot[i] += c
			if g.Labels[0] == "error" {
				errs[i] += c
			}
		}
	}
	on := onsetIndex(errs, tot, int(v.start.Sub(look)/step))
	if on < 0 {
		return nil
	}
	v.onset = look.Add(time.Duration(on) * step)
	if on > 0 && v.onset.Before(v.start) {
		v.bend = v.onset.Add(-step)
		v.bstart = v.bend.Add(-l)
		if v.bstart.Before(look) {
			v.bstart = look
		}
	}
	return nil
}

// onsetIndex finds the bucket where errors began, given error and total
// counts per bucket and the first bucket of the window: from the window's
// peak (over three buckets, so that one busy bucket is not a peak) it
// walks back while the rate stays above a third of the way from the quiet
// level to the peak, tolerating two quiet buckets. It returns -1 when the
// window holds no clear rise above the quiet level.
func onsetIndex(errs, tot []float64, win int) int {
	n := len(errs)
	if win < 0 {
		win = 0
	}
	if win >= n {
		return -1
	}
	sm := make([]float64, n)
	var quiet []float64
	for i := range sm {
		var e, t float64
		for j := max(i-1, 0); j <= min(i+1, n-1); j++ {
			e += errs[j]
			t += tot[j]
		}
		sm[i] = math.NaN()
		if t > 0 {
			sm[i] = e / t
			quiet = append(quiet, sm[i])
		}
	}
	if len(quiet) == 0 {
		return -1
	}
	sort.Float64s(quiet)
	low := quiet[len(quiet)/4]
	peak, high, winErr := -1, 0.0, 0.0
	for i := win; i < n; i++ {
		winErr += errs[i]
		if !math.IsNaN(sm[i]) && sm[i] > high {
			peak, high = i, sm[i]
		}
	}
	var peakErr float64
	if peak >= 0 {
		for j := max(peak-1, 0); j <= min(peak+1, n-1); j++ {
			peakErr += errs[j]
		}
	}
	if peak < 0 || winErr < 5 || peakErr < 3 || high < 2*low+0.002 {
		return -1
	}
	thr := low + (high-low)/3
	on, gap := peak, 0
	for i := peak; i >= 0; i-- {
		if math.IsNaN(sm[i]) {
			continue
		}
		if sm[i] >= thr {
			on, gap = i, 0
		} else if gap++; gap > 2 {
			break
		}
	}
	// The smoothing spreads the rise one bucket early; the first bucket
	// with errors above the threshold itself is the onset.
	for on < peak && (tot[on] == 0 || errs[on]/tot[on] < thr) {
		on++
	}
	return on
}

var (
	fService       = store.Field{Scope: store.ScopeIntrinsic, Name: store.IntrinsicService}
	fName          = store.Field{Scope: store.ScopeIntrinsic, Name: store.IntrinsicName}
	fStatus        = store.Field{Scope: store.ScopeIntrinsic, Name: store.IntrinsicStatus}
	fStatusMessage = store.Field{Scope: store.ScopeIntrinsic, Name: store.IntrinsicStatusMessage}
	fDuration      = store.Field{Scope: store.ScopeIntrinsic, Name: store.IntrinsicDuration}
	fLogGroup      = store.Field{Scope: store.ScopeIntrinsic, Name: store.IntrinsicLogGroup}
	fSeverity      = store.Field{Scope: store.ScopeIntrinsic, Name: store.IntrinsicSeverity}
)

func condError() *store.Cond {
	return &store.Cond{Field: fStatus, Op: store.OpEq, Value: store.Value{Kind: store.KindStatus, Str: "error"}}
}

func condService(s string) *store.Cond {
	return &store.Cond{Field: fService, Op: store.OpEq, Value: store.Value{Str: s}}
}

func and(cs ...*store.Cond) *store.Cond {
	var out []*store.Cond
	for _, c := range cs {
		if c != nil {
			out = append(out, c)
		}
	}
	switch len(out) {
	case 0:
		return nil
	case 1:
		return out[0]
	}
	return &store.Cond{And: out}
}

func sum(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s
}

// tracesLink is the UI link to the traces drilldown for a TraceQL query.
func (v *inv) tracesLink(q string) string {
	return "/traces?" + url.Values{"q": {q}, "start": {unix(v.start)}, "end": {unix(v.end)}}.Encode()
}

func (v *inv) logsLink(group, text string) string {
	p := url.Values{"group": {group}, "start": {unix(v.start)}, "end": {unix(v.end)}}
	if text != "" {
		p.Set("q", text)
	}
	return "/logs?" + p.Encode()
}

func unix(t time.Time) string { return fmt.Sprint(t.Unix()) }

func traceQLService(s string) string { return fmt.Sprintf("resource.service.name = %q", s) }

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func pct(x float64) string { return fmt.Sprintf("%.1f%%", 100*x) }

func clamp01(x float64) float64 {
	if x < 0 {
		return 0
	}
	if x > 1 {
		return 1
	}
	return x
}

func urlQuery(s string) string { return url.QueryEscape(s) }
