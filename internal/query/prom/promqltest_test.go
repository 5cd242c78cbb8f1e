package prom

import (
	"context"
	"testing"

	"github.com/prometheus/prometheus/promql/promqltest"
	"github.com/prometheus/prometheus/storage"

	"github.com/trenchcoat/trenchcoat/internal/store/tsdb"
)

// storeStorage presents a *tsdb.Store as the storage.Storage that
// Prometheus' test scripts load into and query: every read and write goes
// through the store's own Queryable and Appendable, so the scripts run on
// our wiring (TSDB options, out-of-order window, counting appenders).
type storeStorage struct {
	s *tsdb.Store
}

var _ storage.Storage = storeStorage{}

func (st storeStorage) Querier(mint, maxt int64) (storage.Querier, error) {
	return st.s.Queryable().Querier(mint, maxt)
}

func (st storeStorage) ChunkQuerier(mint, maxt int64) (storage.ChunkQuerier, error) {
	return st.s.Queryable().(storage.ChunkQueryable).ChunkQuerier(mint, maxt)
}

func (st storeStorage) Appender(ctx context.Context) storage.Appender {
	return st.s.Appendable().Appender(ctx)
}

func (st storeStorage) AppenderV2(ctx context.Context) storage.AppenderV2 {
	return st.s.AppendableV2().AppenderV2(ctx)
}

func (st storeStorage) StartTime() (int64, error) {
	return st.s.Queryable().(interface{ StartTime() (int64, error) }).StartTime()
}

func (st storeStorage) Close() error { return st.s.Close() }

// skippedScripts are Prometheus test scripts that do not apply to our
// wiring, each with the reason.
var skippedScripts = map[string]string{
	// Start timestamps stored with samples need the TSDB's experimental
	// EnableSTStorage option (Prometheus' st-storage feature flag), which
	// we leave off as Prometheus does by default; these scripts test that
	// storage feature, not PromQL over ordinary samples.
	"testdata/start_timestamps.test": "needs the TSDB's experimental start-timestamp storage, off in our wiring as in Prometheus' defaults",
}

// skipRunner skips the scripts named in skippedScripts.
type skipRunner struct{ *testing.T }

func (r skipRunner) Run(name string, f func(*testing.T)) bool {
	return r.T.Run(name, func(t *testing.T) {
		if why, ok := skippedScripts[name]; ok {
			t.Skip(why)
		}
		f(t)
	})
}

// TestPromQLScripts runs Prometheus' own PromQL acceptance scripts
// (promql/promqltest/testdata) against our store. The engine is the one the
// scripts are written for (experimental functions and delayed name
// removal on); the engine we serve is configured as Prometheus' defaults.
func TestPromQLScripts(t *testing.T) {
	if testing.Short() {
		t.Skip("PromQL scripts take a while")
	}
	engine := promqltest.NewTestEngine(t, false, 0, promqltest.DefaultMaxSamplesPerQuery)
	promqltest.RunBuiltinTestsWithStorage(skipRunner{t}, engine, func(tb testing.TB) storage.Storage {
		s, err := tsdb.Open(tsdb.Config{Dir: tb.TempDir()})
		if err != nil {
			tb.Fatal(err)
		}
		return storeStorage{s}
	})
}
