// Package columnar is the embedded span and log engine: a WAL, an
// in-memory head cut into immutable, compressed, time-partitioned blocks
// with per-column dictionaries, min/max and a trace-id filter, compaction
// and retention. DESIGN.md §4 says why it is our own.
package columnar

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/trenchcoat/trenchcoat/internal/store"
)

var (
	_ store.TraceWriter = (*Store)(nil)
	_ store.TraceReader = (*Store)(nil)
	_ store.LogWriter   = (*Store)(nil)
	_ store.LogReader   = (*Store)(nil)
)

// Config configures the store. Zero values take the defaults noted.
type Config struct {
	Dir          string
	Retention    time.Duration // default 7 days
	MaxBytes     int64         // on-disk cap for spans and logs together; 0 = none
	MaxHeadRows  int           // default 1,000,000 rows per table
	MaxHeadBytes int64         // default 256 MiB per table
	MaxHeadAge   time.Duration // default 10 minutes
	Partition    time.Duration // default 1 hour
	CacheBytes   int64         // decoded block sections kept in memory, default 512 MiB
	SyncInterval time.Duration // WAL fsync interval, default 1 s
	Registerer   prometheus.Registerer
	Logger       *slog.Logger
}

// Store holds the span table and the log table. Safe for concurrent use.
type Store struct {
	spans, logs *table
	cache       *cache
	log         *slog.Logger
	stop        chan struct{}
	wg          sync.WaitGroup
	closeOnce   sync.Once
	closeErr    error
}

// Open opens or creates the store in cfg.Dir and replays its WALs; it
// returns when the data is queryable.
func Open(cfg Config) (*Store, error) {
	if cfg.Dir == "" {
		return nil, fmt.Errorf("columnar: Dir is required")
	}
	if cfg.Retention == 0 {
		cfg.Retention = 7 * 24 * time.Hour
	}
	if cfg.MaxHeadRows == 0 {
		cfg.MaxHeadRows = 1_000_000
	}
	if cfg.MaxHeadBytes == 0 {
		cfg.MaxHeadBytes = 256 << 20
	}
	if cfg.MaxHeadAge == 0 {
		cfg.MaxHeadAge = 10 * time.Minute
	}
	if cfg.Partition == 0 {
		cfg.Partition = time.Hour
	}
	if cfg.CacheBytes == 0 {
		cfg.CacheBytes = 512 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{cache: newCache(cfg.CacheBytes), log: cfg.Logger, stop: make(chan struct{})}
	tc := func(name string) tableConfig {
		maxBytes := cfg.MaxBytes
		if maxBytes > 0 {
			maxBytes /= 2 // each table gets half of the cap
		}
		return tableConfig{Dir: filepath.Join(cfg.Dir, name), MaxHeadRows: cfg.MaxHeadRows, MaxHeadBytes: cfg.MaxHeadBytes,
			MaxHeadAge: cfg.MaxHeadAge, Partition: cfg.Partition, Retention: cfg.Retention, MaxBytes: maxBytes,
			CompactMin: 4, CompactRows: 4 * cfg.MaxHeadRows, SyncInterval: cfg.SyncInterval}
	}
	var err error
	s.spans, err = openTable(tc("spans"), spanSchema, s.cache, cfg.Logger, func(p *part, payload []byte) (int, error) {
		td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(payload)
		if err != nil {
			return 0, err
		}
		return p.appendTraces(td), nil
	})
	if err != nil {
		return nil, err
	}
	s.logs, err = openTable(tc("logs"), logSchema, s.cache, cfg.Logger, func(p *part, payload []byte) (int, error) {
		ld, err := (&plog.ProtoUnmarshaler{}).UnmarshalLogs(payload)
		if err != nil {
			return 0, err
		}
		return p.appendLogs(ld), nil
	})
	if err != nil {
		s.spans.close()
		return nil, err
	}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(&collector{s: s})
	}
	s.wg.Add(1)
	go s.maintainLoop()
	return s, nil
}

func (s *Store) maintainLoop() {
	defer s.wg.Done()
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			s.spans.maintain(now)
			s.logs.maintain(now)
		}
	}
}

// Maintain runs one round of head cutting, retention and compaction now
// (it also runs every 10 s in the background).
func (s *Store) Maintain() {
	now := time.Now()
	s.spans.maintain(now)
	s.logs.maintain(now)
}

// Flush cuts both heads into blocks and waits for them to be written.
func (s *Store) Flush() {
	for _, t := range []*table{s.spans, s.logs} {
		t.cut()
		t.flushWG.Wait()
	}
}

// WriteTraces stores td durably (WAL) before returning.
func (s *Store) WriteTraces(ctx context.Context, td ptrace.Traces) error {
	if td.SpanCount() == 0 {
		return nil
	}
	payload, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	if err != nil {
		return fmt.Errorf("columnar: encoding traces: %w", err)
	}
	return s.spans.append(payload, func(p *part) int { return p.appendTraces(td) })
}

// WriteLogs stores ld durably (WAL) before returning.
func (s *Store) WriteLogs(ctx context.Context, ld plog.Logs) error {
	if ld.LogRecordCount() == 0 {
		return nil
	}
	payload, err := (&plog.ProtoMarshaler{}).MarshalLogs(ld)
	if err != nil {
		return fmt.Errorf("columnar: encoding logs: %w", err)
	}
	return s.logs.append(payload, func(p *part) int { return p.appendLogs(ld) })
}

// Close stops background work and closes the WALs. The heads are not
// written out: the WAL holds them and the next Open replays it. Safe to
// call twice.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		s.wg.Wait()
		err1 := s.spans.close()
		err2 := s.logs.close()
		if err1 != nil {
			s.closeErr = err1
		} else {
			s.closeErr = err2
		}
	})
	return s.closeErr
}

// collector exports the store's self-metrics.
type collector struct{ s *Store }

var (
	descRows       = prometheus.NewDesc("trenchcoat_store_rows_appended_total", "Rows appended since start (including WAL replay).", []string{"table"}, nil)
	descHeadRows   = prometheus.NewDesc("trenchcoat_store_head_rows", "Rows in the in-memory head (including heads being written out).", []string{"table"}, nil)
	descHeadBytes  = prometheus.NewDesc("trenchcoat_store_head_bytes", "Approximate memory held by the head.", []string{"table"}, nil)
	descBlocks     = prometheus.NewDesc("trenchcoat_store_blocks", "Blocks on disk.", []string{"table"}, nil)
	descBlockBytes = prometheus.NewDesc("trenchcoat_store_block_bytes", "Bytes of blocks on disk.", []string{"table"}, nil)
	descWALBytes   = prometheus.NewDesc("trenchcoat_store_wal_bytes", "Bytes of WAL segments on disk.", []string{"table"}, nil)
	descTorn       = prometheus.NewDesc("trenchcoat_store_wal_torn_records_total", "Unreadable WAL records skipped on replay (a torn last write).", []string{"table"}, nil)
	descCache      = prometheus.NewDesc("trenchcoat_store_cache_bytes", "Decoded block sections held in the cache.", nil, nil)
)

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRows, descHeadRows, descHeadBytes, descBlocks, descBlockBytes, descWALBytes, descTorn, descCache} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	for _, t := range []*table{c.s.spans, c.s.logs} {
		st := t.stats()
		n := t.sch.name
		ch <- prometheus.MustNewConstMetric(descRows, prometheus.CounterValue, float64(st.rows), n)
		ch <- prometheus.MustNewConstMetric(descHeadRows, prometheus.GaugeValue, float64(st.headRows), n)
		ch <- prometheus.MustNewConstMetric(descHeadBytes, prometheus.GaugeValue, float64(st.headBytes), n)
		ch <- prometheus.MustNewConstMetric(descBlocks, prometheus.GaugeValue, float64(st.blocks), n)
		ch <- prometheus.MustNewConstMetric(descBlockBytes, prometheus.GaugeValue, float64(st.blockBytes), n)
		ch <- prometheus.MustNewConstMetric(descWALBytes, prometheus.GaugeValue, float64(st.walBytes), n)
		ch <- prometheus.MustNewConstMetric(descTorn, prometheus.CounterValue, float64(st.torn), n)
	}
	ch <- prometheus.MustNewConstMetric(descCache, prometheus.GaugeValue, float64(c.s.cache.bytes()))
}

// Stats reports sizes, for benchmarks: rows appended, blocks, bytes on disk.
type Stats struct {
	SpanRows, LogRows             int64
	SpanBlocks, LogBlocks         int
	SpanBlockBytes, LogBlockBytes int64
	WALBytes, HeadBytes           int64
	HeadRows                      int64
}

func (s *Store) Stats() Stats {
	a, b := s.spans.stats(), s.logs.stats()
	return Stats{SpanRows: a.rows, LogRows: b.rows, SpanBlocks: a.blocks, LogBlocks: b.blocks, SpanBlockBytes: a.blockBytes,
		LogBlockBytes: b.blockBytes, WALBytes: a.walBytes + b.walBytes, HeadBytes: a.headBytes + b.headBytes, HeadRows: a.headRows + b.headRows}
}
