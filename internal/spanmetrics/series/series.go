// Package series holds cumulative counters and classic histograms computed
// from spans, and writes them into a Prometheus storage at span time.
//
// It is the engine shared by the span-metrics and service-graph generators:
// they find a series by a hash of its key values (no labels are built per
// span), add to the delta of the interval the span ended in, and the
// registry turns those deltas into one cumulative sample per series per
// interval, stamped with the end of that interval in span time. Writing at
// span time rather than wall-clock time is what lets backfilled history
// (spans hours old) show up hours ago in PromQL, SLOs and alerts.
//
// Each series keeps its own cursor (the last interval written) and
// watermark (its newest span time, moved on with the wall clock, minus a
// lag), so one service's exporter trailing another's does not make its
// spans late. A span older than what its series already wrote is counted
// into the next interval (counters stay monotonic), up to MaxLateness.
// Series idle for StaleAfter are no longer written and are forgotten.
package series

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/prometheus/prometheus/storage"
)

// Shape names the metric families every series of a registry carries.
type Shape struct {
	// Counters are full metric names (e.g. "traces_spanmetrics_calls_total").
	Counters []string
	// Histograms are base names; "_bucket", "_sum" and "_count" are appended.
	Histograms []string
}

// Config configures a Registry. Zero values take the defaults noted.
type Config struct {
	Shape Shape
	// Buckets are histogram upper bounds in seconds, ascending; +Inf is implicit.
	Buckets []float64
	// Interval between samples of a series, in span time. Default 15s.
	Interval time.Duration
	// Lag is how far a series' writing stays behind the newest span time
	// seen for it, so that spans of an interval arriving a little late
	// (batching in SDKs and collectors) still land in their own interval.
	// Default 10s.
	Lag time.Duration
	// StaleAfter: a series with no span for this long (span time) is no
	// longer written and is forgotten. Default 15m, as Tempo's generator.
	StaleAfter time.Duration
	// MaxAge: spans that ended longer ago than this (wall clock) are dropped,
	// because the metric store refuses samples older than its out-of-order
	// window. Default 7 days minus one hour.
	MaxAge time.Duration
	// MaxLateness bounds how late a span may be (behind what was already
	// written) and still be counted into the next interval; later ones are
	// dropped and counted (reason too_late). Moving hours-old spans to now
	// would draw a spike that never happened and could page someone on a
	// burn-rate alert. Default 10m.
	MaxLateness time.Duration
	// MaxSeries caps the series held; spans of further series are dropped
	// and counted. Default 20,000.
	MaxSeries int
	// Labels adds the base labels of a new series (without __name__ and le)
	// from its key values. Called rarely (once per series), under the lock.
	Labels func(key []string, b *labels.ScratchBuilder)
	// Subsystem names the self-metrics: trenchcoat_<Subsystem>_...
	Subsystem  string
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// Now is the wall clock; nil means time.Now. Tests set it.
	Now func() time.Time
	// OnTick, if set, runs on every turn of the loop started by Start,
	// before samples are written (the service graph expires edges here).
	OnTick func()
}

// DefaultBuckets are the latency buckets in seconds: 2 ms doubling up to
// 16.384 s (Tempo's default), then 30 s and 60 s so that client timeouts
// (commonly 30 s) land in a bucket of their own instead of blurring into
// +Inf.
func DefaultBuckets() []float64 {
	b := make([]float64, 0, 16)
	for v := 0.002; len(b) < 14; v *= 2 {
		b = append(b, v)
	}
	return append(b, 30, 60)
}

// Registry holds the series. Its Tx methods are for the generators' ingest
// path; Advance and Flush write samples. Safe for concurrent use.
type Registry struct {
	cfg      Config
	app      storage.AppendableV2
	interval int64 // ms
	lag      int64
	stale    int64
	maxAge   int64
	maxLate  int64
	nb       int // buckets including +Inf
	width    int // floats per delta: counters, then per histogram nb counts and a sum
	nSamples int // samples per series per interval
	les      []string
	names    []string     // __name__ per sample slot
	meta     []sampleMeta // per sample slot
	log      *slog.Logger
	now      func() time.Time
	m        *selfMetrics
	notify   chan struct{}

	mu      sync.Mutex
	series  map[uint64]*Series
	count   int
	free    [][]float64
	scratch labels.ScratchBuilder

	lifeMu  sync.Mutex
	cancel  context.CancelFunc
	done    chan struct{}
	stopped bool

	emitMu sync.Mutex // serialises writers of samples (and of Series.refs)
	snap   []snapEntry
	vals   []float64
}

type sampleMeta struct {
	family string
	md     metadata.Metadata
}

// Series is one combination of key values. Its fields are owned by the
// registry; generators only hold the pointer within a Tx.
type Series struct {
	hash    uint64
	key     []string
	next    *Series // hash collision chain
	lsets   []labels.Labels
	refs    []storage.SeriesRef
	cum     []float64
	pending []delta // ascending by end
	// cursor is the end of the last interval written (ms), 0 before the
	// first. Each series has its own, so that a service whose exporter
	// trails the others (a quiet service's batch sent after a busy one's)
	// is not "late" against someone else's clock.
	cursor   int64
	last     int64 // newest span end counted (ms, clamped to the wall clock)
	lastWall int64 // wall clock (ms) when last was seen
	started  bool  // has been written at least once
}

type delta struct {
	end int64
	v   []float64
}

type snapEntry struct {
	s     *Series
	fresh bool
	off   int   // into Registry.vals
	t     int64 // sample timestamp
}

type selfMetrics struct {
	active       prometheus.Gauge
	dropped      *prometheus.CounterVec
	late         prometheus.Counter
	samples      prometheus.Counter
	appendFailed prometheus.Counter
	staleSeries  prometheus.Counter
}

// New returns a registry writing into app.
func New(cfg Config, app storage.AppendableV2) (*Registry, error) {
	if app == nil {
		return nil, errors.New("series: nil storage")
	}
	if len(cfg.Shape.Counters)+len(cfg.Shape.Histograms) == 0 {
		return nil, errors.New("series: empty shape")
	}
	if cfg.Labels == nil {
		return nil, errors.New("series: nil Labels func")
	}
	if cfg.Buckets == nil {
		cfg.Buckets = DefaultBuckets()
	}
	for i, b := range cfg.Buckets {
		if math.IsNaN(b) || math.IsInf(b, 0) || (i > 0 && b <= cfg.Buckets[i-1]) {
			return nil, fmt.Errorf("series: buckets must be finite and strictly ascending, got %v", cfg.Buckets)
		}
	}
	if cfg.Interval == 0 {
		cfg.Interval = 15 * time.Second
	}
	if cfg.Interval < time.Millisecond {
		return nil, fmt.Errorf("series: interval %s too small", cfg.Interval)
	}
	if cfg.Lag == 0 {
		cfg.Lag = 10 * time.Second
	}
	if cfg.StaleAfter == 0 {
		cfg.StaleAfter = 15 * time.Minute
	}
	if cfg.MaxAge == 0 {
		cfg.MaxAge = 7*24*time.Hour - time.Hour
	}
	if cfg.MaxSeries == 0 {
		cfg.MaxSeries = 20000
	}
	if cfg.MaxLateness == 0 {
		cfg.MaxLateness = 10 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Subsystem == "" {
		cfg.Subsystem = "series"
	}
	r := &Registry{
		cfg:      cfg,
		app:      app,
		interval: cfg.Interval.Milliseconds(),
		lag:      cfg.Lag.Milliseconds(),
		stale:    cfg.StaleAfter.Milliseconds(),
		maxAge:   cfg.MaxAge.Milliseconds(),
		maxLate:  cfg.MaxLateness.Milliseconds(),
		nb:       len(cfg.Buckets) + 1,
		log:      cfg.Logger,
		now:      cfg.Now,
		series:   make(map[uint64]*Series),
		notify:   make(chan struct{}, 1),
		scratch:  labels.NewScratchBuilder(16),
	}
	if r.now == nil {
		r.now = time.Now
	}
	r.width = len(cfg.Shape.Counters) + len(cfg.Shape.Histograms)*(r.nb+1)
	for _, b := range cfg.Buckets {
		r.les = append(r.les, strconv.FormatFloat(b, 'f', -1, 64))
	}
	r.les = append(r.les, "+Inf")
	for _, c := range cfg.Shape.Counters {
		r.names = append(r.names, c)
		r.meta = append(r.meta, sampleMeta{family: c, md: metadata.Metadata{Type: model.MetricTypeCounter}})
	}
	for _, h := range cfg.Shape.Histograms {
		md := sampleMeta{family: h, md: metadata.Metadata{Type: model.MetricTypeHistogram, Unit: "seconds"}}
		for range r.nb {
			r.names = append(r.names, h+"_bucket")
			r.meta = append(r.meta, md)
		}
		r.names = append(r.names, h+"_sum", h+"_count")
		r.meta = append(r.meta, md, md)
	}
	r.nSamples = len(r.names)
	m, err := newSelfMetrics(cfg.Subsystem, cfg.Registerer)
	if err != nil {
		return nil, err
	}
	r.m = m
	return r, nil
}

func newSelfMetrics(sub string, reg prometheus.Registerer) (*selfMetrics, error) {
	m := &selfMetrics{
		active: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "trenchcoat", Subsystem: sub,
			Name: "active_series", Help: "Series held by the generator (each writes several samples per interval)."}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "trenchcoat", Subsystem: sub,
			Name: "dropped_spans_total", Help: "Spans not counted, by reason (max_series, too_old, too_late, and max_items for the service graph)."}, []string{"reason"}),
		late: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "trenchcoat", Subsystem: sub,
			Name: "late_spans_total", Help: "Spans older than the interval already written for them, counted into the next interval."}),
		samples: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "trenchcoat", Subsystem: sub,
			Name: "samples_appended_total", Help: "Samples appended to the metric store."}),
		appendFailed: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "trenchcoat", Subsystem: sub,
			Name: "append_failures_total", Help: "Samples the metric store refused (including failed commits)."}),
		staleSeries: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "trenchcoat", Subsystem: sub,
			Name: "stale_series_total", Help: "Series forgotten after going idle."}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.active, m.dropped, m.late, m.samples, m.appendFailed, m.staleSeries} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("series: register self-metrics: %w", err)
			}
		}
	}
	m.dropped.WithLabelValues("max_series")
	m.dropped.WithLabelValues("too_old")
	m.dropped.WithLabelValues("too_late")
	return m, nil
}

// Interval returns the sample interval.
func (r *Registry) Interval() time.Duration { return r.cfg.Interval }

// Notify is signalled (without blocking) when enough span time has passed
// that Advance has work; the generator's loop waits on it.
func (r *Registry) Notify() <-chan struct{} { return r.notify }

// Tx is an open update of the registry; it holds the registry's lock, so
// keep it to one batch. Not safe for concurrent use.
type Tx struct {
	r        *Registry
	nowMs    int64
	oldest   int64
	late     int
	tooOld   int
	tooLate  int
	overflow int
	wake     bool
}

// Begin locks the registry for a batch of updates; call End when done.
func (r *Registry) Begin() *Tx {
	now := r.now().UnixMilli()
	r.mu.Lock()
	return &Tx{r: r, nowMs: now, oldest: now - r.maxAge}
}

// End unlocks the registry and publishes the batch's self-metrics.
func (tx *Tx) End() {
	r := tx.r
	wake := tx.wake
	r.m.active.Set(float64(r.count))
	r.mu.Unlock()
	if tx.late > 0 {
		r.m.late.Add(float64(tx.late))
	}
	if tx.tooOld > 0 {
		r.m.dropped.WithLabelValues("too_old").Add(float64(tx.tooOld))
	}
	if tx.tooLate > 0 {
		r.m.dropped.WithLabelValues("too_late").Add(float64(tx.tooLate))
	}
	if tx.overflow > 0 {
		r.m.dropped.WithLabelValues("max_series").Add(float64(tx.overflow))
	}
	if wake {
		select {
		case r.notify <- struct{}{}:
		default:
		}
	}
}

// Series finds or creates the series with the given key values; hash must
// be a hash of exactly those values. The key strings are copied on
// creation, so they may point into pdata. Returns nil (and counts the
// span as dropped) when MaxSeries is reached.
func (tx *Tx) Series(hash uint64, key []string) *Series {
	r := tx.r
	head := r.series[hash]
	for s := head; s != nil; s = s.next {
		if slices.Equal(s.key, key) {
			return s
		}
	}
	if r.count >= r.cfg.MaxSeries {
		tx.overflow++
		return nil
	}
	s := &Series{hash: hash, key: make([]string, len(key)), next: head}
	for i, k := range key {
		s.key[i] = string([]byte(k)) // own copy: k may alias a reused pdata buffer
	}
	r.scratch.Reset()
	r.cfg.Labels(s.key, &r.scratch)
	base := r.scratch.Labels()
	s.lsets = make([]labels.Labels, r.nSamples)
	i := 0
	for _, name := range r.names {
		b := labels.NewBuilder(base).Set(model.MetricNameLabel, name)
		if i >= len(r.cfg.Shape.Counters) {
			hi := (i - len(r.cfg.Shape.Counters)) % (r.nb + 2)
			if hi < r.nb {
				b.Set(model.BucketLabel, r.les[hi])
			}
		}
		s.lsets[i] = b.Labels()
		i++
	}
	s.refs = make([]storage.SeriesRef, r.nSamples)
	s.cum = make([]float64, r.width)
	r.series[hash] = s
	r.count++
	return s
}

// TooOld reports (and counts) a span that ended too long ago to be
// written; check it before Series so such spans create no series.
func (tx *Tx) TooOld(endNanos int64) bool {
	if endNanos/1e6 < tx.oldest {
		tx.tooOld++
		return true
	}
	return false
}

// Delta returns the delta slots of s for the interval that a span ending
// at endNanos (unix ns) falls in, or nil if the span is too old or too late
// to count.
// Slots: one per counter, then per histogram one per bucket (+Inf last)
// and the sum; use Observe for histograms.
//
// A span whose interval was already written for its series is counted into
// the next interval to be written instead: the sample already in the store
// cannot change, and counters must stay monotonic, so a late span shifts
// forward by the lag it arrived with rather than being lost (up to
// MaxLateness; beyond that it is dropped and counted).
func (tx *Tx) Delta(s *Series, endNanos int64) []float64 {
	r := tx.r
	ms := endNanos / 1e6
	if ms > tx.nowMs {
		// Clock skew: a span "from the future" would pull its series'
		// watermark ahead of every honest span and make them all late.
		// (So a simulation running faster than real time is counted at
		// now, not at its future timestamps.)
		ms = tx.nowMs
	}
	if ms < tx.oldest {
		tx.tooOld++
		return nil
	}
	end := ceilTo(ms, r.interval)
	if s.cursor != 0 && end <= s.cursor {
		if s.cursor-ms > r.maxLate {
			tx.tooLate++
			return nil
		}
		end = s.cursor + r.interval
		tx.late++
	}
	if ms > s.last {
		s.last, s.lastWall = ms, tx.nowMs
	}
	// Wake the writer when this series has an interval due.
	next := s.cursor + r.interval
	if s.cursor == 0 {
		next = end
		if len(s.pending) > 0 {
			next = min(next, s.pending[0].end)
		}
	}
	if next <= s.last-r.lag {
		tx.wake = true
	}
	n := len(s.pending)
	if n > 0 && s.pending[n-1].end == end {
		return s.pending[n-1].v
	}
	i := n
	for i > 0 && s.pending[i-1].end > end {
		i--
	}
	if i > 0 && s.pending[i-1].end == end {
		return s.pending[i-1].v
	}
	d := delta{end: end, v: r.alloc()}
	s.pending = slices.Insert(s.pending, i, d)
	return d.v
}

// Observe adds one observation of seconds to histogram h of a delta.
func (tx *Tx) Observe(d []float64, h int, seconds float64) {
	r := tx.r
	off := len(r.cfg.Shape.Counters) + h*(r.nb+1)
	b := r.cfg.Buckets
	// Linear search: 16 bounds, and most spans are fast, so this beats a
	// binary search in practice.
	i := 0
	for i < len(b) && seconds > b[i] {
		i++
	}
	d[off+i]++
	d[off+r.nb] += seconds
}

func (r *Registry) alloc() []float64 {
	if n := len(r.free); n > 0 {
		v := r.free[n-1]
		r.free = r.free[:n-1]
		return v
	}
	return make([]float64, r.width)
}

func (r *Registry) release(v []float64) {
	clear(v)
	if len(r.free) < 4096 {
		r.free = append(r.free, v)
	}
}

func ceilTo(ms, iv int64) int64 {
	q := ms / iv
	if ms%iv > 0 {
		q++
	}
	return q * iv
}

// Advance writes, for every series, the intervals that end at or before
// both upTo (unix ms) and the series' watermark: its newest span time,
// moved forward with the wall clock since that span arrived (so live
// series keep flowing when traffic stops, while a fast backfill is not
// overtaken by the wall clock), capped at now, minus Lag. Each active
// series gets one sample per family per interval, even without new spans,
// as a scrape would give: rate() needs two samples in its window.
func (r *Registry) Advance(ctx context.Context, upTo int64) error {
	return r.advance(ctx, upTo, false)
}

// Flush writes everything counted so far, including the interval still
// open; a sample of an interval that ends after now is stamped now.
func (r *Registry) Flush(ctx context.Context) error {
	return r.advance(ctx, math.MaxInt64, true)
}

const commitEvery = 50000

func (r *Registry) advance(ctx context.Context, upTo int64, flush bool) error {
	r.emitMu.Lock()
	defer r.emitMu.Unlock()
	var app storage.AppenderV2
	pendingSamples := 0
	var errs []error
	commit := func() {
		if app == nil {
			return
		}
		if err := app.Commit(); err != nil {
			r.m.appendFailed.Add(float64(pendingSamples))
			errs = append(errs, fmt.Errorf("series: commit: %w", err))
		} else {
			r.m.samples.Add(float64(pendingSamples))
		}
		app, pendingSamples = nil, 0
	}
	defer commit()
	r.step(upTo, flush)
	// The snapshot has moved the series' cursors: it must be written in
	// full even if ctx ends meanwhile (Shutdown cancels the loop while it
	// may be here), or those intervals would be lost.
	actx := context.WithoutCancel(ctx)
	for i := 0; i < len(r.snap); {
		if app == nil {
			app = r.app.AppenderV2(actx)
		}
		n := min(len(r.snap)-i, 1+commitEvery/r.nSamples)
		pendingSamples += r.appendSnap(app, r.snap[i:i+n], &errs)
		i += n
		if pendingSamples >= commitEvery {
			commit()
		}
	}
	commit()
	if len(errs) > 0 {
		// Keep the first few; one bad interval usually repeats itself.
		r.log.Warn("span-derived samples refused by the metric store", "subsystem", r.cfg.Subsystem, "errors", len(errs), "first", errs[0])
		return errors.Join(errs[:min(len(errs), 3)]...)
	}
	return nil
}

// step folds the deltas that are due into the cumulative values and
// snapshots what to write (r.snap, r.vals), series by series.
func (r *Registry) step(upTo int64, flush bool) {
	now := r.now().UnixMilli()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.snap, r.vals = r.snap[:0], r.vals[:0]
	for h, head := range r.series {
		var prev *Series
		for s := head; s != nil; s = s.next {
			if r.emit(s, now, upTo, flush) {
				prev = s
				continue
			}
			// Gone idle: forget it. If it comes back it starts from zero
			// with a zero sample first, which PromQL reads as a counter
			// reset, so rate() and increase() stay right.
			if prev != nil {
				prev.next = s.next
			} else if s.next != nil {
				r.series[h] = s.next
			} else {
				delete(r.series, h)
			}
			r.count--
			r.m.staleSeries.Inc()
		}
	}
	r.m.active.Set(float64(r.count))
}

// emit adds the due intervals of s to the snapshot. It returns false when
// s has gone stale (or never counted a span) and is to be dropped.
func (r *Registry) emit(s *Series, now, upTo int64, flush bool) bool {
	wm := min(min(s.last+(now-s.lastWall), now)-r.lag, upTo)
	for {
		var t int64
		if s.cursor == 0 {
			if len(s.pending) == 0 {
				return false // all its spans were refused
			}
			t = s.pending[0].end
		} else {
			t = s.cursor + r.interval
		}
		if flush {
			// Write what is pending; do not extend idle series to now.
			if len(s.pending) == 0 {
				return true
			}
		} else if t > wm {
			return true
		}
		fresh := false
		if len(s.pending) > 0 && s.pending[0].end == t {
			d := s.pending[0].v
			for i, v := range d {
				s.cum[i] += v
			}
			r.release(d)
			s.pending[0] = delta{}
			s.pending = s.pending[1:]
			fresh = !s.started
			s.started = true
		} else if t-s.last > r.stale {
			if len(s.pending) == 0 {
				return false
			}
			// Idle for longer than StaleAfter, with spans counted further
			// on: write nothing in the gap (PromQL sees the series go
			// stale) and resume there with the same cumulative value.
			s.cursor = s.pending[0].end - r.interval
			continue
		}
		stamp := t
		if flush && stamp > now {
			stamp = now
		}
		r.snap = append(r.snap, snapEntry{s: s, fresh: fresh, off: len(r.vals), t: stamp})
		r.vals = append(r.vals, s.cum...)
		s.cursor = t
	}
}

// appendSnap writes snapshot entries taken by step and returns the number
// of samples appended.
func (r *Registry) appendSnap(app storage.AppenderV2, snap []snapEntry, errs *[]error) int {
	nc := len(r.cfg.Shape.Counters)
	nh := len(r.cfg.Shape.Histograms)
	n := 0
	var out []float64
	for _, e := range snap {
		t := e.t
		cum := r.vals[e.off : e.off+r.width]
		out = r.expand(out[:0], cum, nc, nh)
		if e.fresh {
			// A new series starts with a zero one interval earlier, so the
			// first interval's spans count in rate()/increase() instead of
			// being taken as the counter's starting value.
			for i := range out {
				if _, err := r.appendOne(app, e.s, i, t-r.interval, 0); err != nil {
					// A zero refused (a previous run wrote this timestamp)
					// costs only that first increment; not worth an error.
					r.m.appendFailed.Inc()
				} else {
					n++
				}
			}
		}
		for i, v := range out {
			if _, err := r.appendOne(app, e.s, i, t, v); err != nil {
				r.m.appendFailed.Inc()
				if len(*errs) < 10 {
					*errs = append(*errs, fmt.Errorf("append %s at %d: %w", e.s.lsets[i], t, err))
				}
			} else {
				n++
			}
		}
	}
	return n
}

func (r *Registry) appendOne(app storage.AppenderV2, s *Series, i int, t int64, v float64) (storage.SeriesRef, error) {
	m := &r.meta[i]
	ref, err := app.Append(s.refs[i], s.lsets[i], 0, t, v, nil, nil, storage.AppendV2Options{MetricFamilyName: m.family, Metadata: m.md})
	if err == nil {
		s.refs[i] = ref
	}
	return ref, err
}

// expand turns cumulative slots into sample values in lsets order:
// counters, then per histogram the cumulative bucket counts, sum, count.
func (r *Registry) expand(out, cum []float64, nc, nh int) []float64 {
	out = append(out, cum[:nc]...)
	for h := range nh {
		off := nc + h*(r.nb+1)
		acc := 0.0
		for i := range r.nb {
			acc += cum[off+i]
			out = append(out, acc)
		}
		out = append(out, cum[off+r.nb], acc)
	}
	return out
}

// Start runs the loop that writes samples, until Stop. ctx is only for
// starting. Start after Stop is an error.
func (r *Registry) Start(context.Context) error {
	r.lifeMu.Lock()
	defer r.lifeMu.Unlock()
	if r.stopped {
		return fmt.Errorf("%s: start after shutdown", r.cfg.Subsystem)
	}
	if r.cancel != nil {
		return fmt.Errorf("%s: already started", r.cfg.Subsystem)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan struct{})
	go func() {
		defer close(r.done)
		r.run(ctx)
	}()
	return nil
}

// Stop ends the loop started by Start (without flushing) and waits for it,
// or for ctx. Safe to call twice and without Start.
func (r *Registry) Stop(ctx context.Context) error {
	r.lifeMu.Lock()
	defer r.lifeMu.Unlock()
	r.stopped = true
	if r.cancel == nil {
		return nil
	}
	r.cancel()
	select {
	case <-r.done:
		r.cancel = nil
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run drives Advance until ctx ends: on a wall-clock ticker (so series keep
// flowing when traffic stops) and whenever ingest says span time has moved
// far enough (so a fast backfill is written as it goes, not all at the end).
func (r *Registry) run(ctx context.Context) {
	tick := time.NewTicker(min(r.cfg.Interval, time.Second))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-r.notify:
		}
		if r.cfg.OnTick != nil {
			r.cfg.OnTick()
		}
		if err := r.Advance(ctx, math.MaxInt64); err != nil && ctx.Err() == nil {
			r.log.Warn("writing span-derived metrics", "subsystem", r.cfg.Subsystem, "err", err)
		}
	}
}

// Dropped returns the registry's dropped-spans counter for reason, so a
// generator can count its own refusals beside the registry's.
func (r *Registry) Dropped(reason string) prometheus.Counter {
	return r.m.dropped.WithLabelValues(reason)
}

// Len returns the number of series held.
func (r *Registry) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.count
}
