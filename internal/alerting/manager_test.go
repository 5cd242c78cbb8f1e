package alerting

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	"gopkg.in/yaml.v3"

	"github.com/trenchcoat/trenchcoat/internal/slo"
)

// promtoolTest is the part of a `promtool test rules` file this test reads.
type promtoolTest struct {
	EvaluationInterval model.Duration `yaml:"evaluation_interval"`
	Tests              []struct {
		Interval    model.Duration `yaml:"interval"`
		InputSeries []struct {
			Series string `yaml:"series"`
			Values string `yaml:"values"`
		} `yaml:"input_series"`
		AlertRuleTest []struct {
			EvalTime  model.Duration `yaml:"eval_time"`
			Alertname string         `yaml:"alertname"`
			ExpAlerts []struct {
				ExpLabels map[string]string `yaml:"exp_labels"`
			} `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

// TestEvaluatorMatchesPromtool runs the scenario of the slo package's
// promtool unit test through our evaluator (the rules package inside
// Manager) on a real TSDB, and checks the same expectations: the page
// alert fires exactly when promtool says, and not before. It also pins
// the first firing minute.
func TestEvaluatorMatchesPromtool(t *testing.T) {
	dir := filepath.Join("..", "slo", "testdata", "promtool")
	s := mustSLO(t, string(readFile(t, filepath.Join(dir, "page-alert.slo.yaml"))))
	var pt promtoolTest
	if err := yaml.Unmarshal(readFile(t, filepath.Join(dir, "page-alert.test.yaml")), &pt); err != nil {
		t.Fatal(err)
	}
	db := openDB(t)
	p := parser.NewParser(parser.Options{})
	tc := pt.Tests[0]
	step := time.Duration(tc.Interval)
	epoch := time.Unix(0, 0).UTC()
	var end time.Duration
	for _, in := range tc.InputSeries {
		lbls, vals, err := p.ParseSeriesDesc(in.Series + " " + in.Values)
		if err != nil {
			t.Fatal(err)
		}
		var idx []int
		for i, v := range vals {
			if !v.Omitted {
				idx = append(idx, i)
			}
		}
		app := db.Appender(context.Background())
		for _, i := range idx {
			if _, err := app.Append(0, lbls, epoch.Add(time.Duration(i)*step).UnixMilli(), vals[i].Value); err != nil {
				t.Fatal(err)
			}
		}
		if err := app.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	expect := map[time.Duration]bool{}
	for _, a := range tc.AlertRuleTest {
		expect[time.Duration(a.EvalTime)] = len(a.ExpAlerts) > 0
		end = max(end, time.Duration(a.EvalTime))
	}

	m, err := New(Config{Interval: time.Duration(pt.EvaluationInterval)}, newEngine(), db, db)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Shutdown(context.Background())
	if err := m.SetSLOs([]slo.SLO{s}); err != nil {
		t.Fatal(err)
	}
	// Load the groups without starting their timers: this test drives
	// evaluation itself, at the timestamps promtool uses.
	if err := m.update(); err != nil {
		t.Fatal(err)
	}
	groups := m.rules.RuleGroups()
	if len(groups) != 1 {
		t.Fatalf("%d groups", len(groups))
	}
	firstFiring := time.Duration(-1)
	for at := time.Duration(0); at <= end; at += time.Duration(pt.EvaluationInterval) {
		groups[0].Eval(context.Background(), epoch.Add(at))
		firing := false
		for _, a := range m.Alerts() {
			if a.State == "firing" && a.Severity == "page" && a.SLO == s.Name {
				firing = true
			}
		}
		if firing && firstFiring < 0 {
			firstFiring = at
		}
		if want, ok := expect[at]; ok && want != firing {
			t.Errorf("at %s: firing=%v, promtool expects %v", model.Duration(at), firing, want)
		}
	}
	// 1h error ratio 300k/(36000+300k) > 13.44% from k = 19 minutes after
	// the onset at 361m.
	if firstFiring != 380*time.Minute {
		t.Errorf("page alert first fired at %s, want 380m", model.Duration(firstFiring))
	}
	states := m.RuleStates(s.Name)
	if len(states) != 1 || states[0].State != "firing" || states[0].Severity != "page" || states[0].Health != "ok" {
		t.Errorf("rule states %+v", states)
	}
}

func TestShutdownTwiceAndWithoutStart(t *testing.T) {
	db := openDB(t)
	s := mustSLO(t, string(readFile(t, filepath.Join("..", "slo", "testdata", "tickets-server-success-rate.yaml"))))
	ctx := context.Background()

	m, err := New(Config{}, newEngine(), db, db)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.SetSLOs([]slo.SLO{s}); err != nil {
		t.Fatal(err)
	}
	if err := m.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx); err == nil {
		t.Error("Start after Shutdown succeeded")
	}

	m, err = New(Config{Interval: 10 * time.Millisecond}, newEngine(), db, db)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.SetSLOs([]slo.SLO{s}); err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx); err == nil {
		t.Error("second Start succeeded")
	}
	for range 2 {
		if err := m.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	db := openDB(t)
	if _, err := New(Config{AlertmanagerURLs: []string{"localhost:9093"}}, newEngine(), db, db); err == nil || !strings.Contains(err.Error(), "want http(s)://host:port") {
		t.Errorf("bad Alertmanager URL accepted: %v", err)
	}
	if _, err := New(Config{}, nil, db, db); err == nil {
		t.Error("nil engine accepted")
	}
}

func TestSetSLOsRefusesDuplicates(t *testing.T) {
	db := openDB(t)
	m, err := New(Config{}, newEngine(), db, db)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Shutdown(context.Background())
	s := mustSLO(t, "name: a\nobjective: 0.9\nsli: {successRate: {service: s}}\n")
	if err := m.SetSLOs([]slo.SLO{s, s}); err == nil || !strings.Contains(err.Error(), "defined twice") {
		t.Errorf("duplicate accepted: %v", err)
	}
}
