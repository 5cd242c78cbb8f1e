package slo

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/prometheus/model/rulefmt"
	"go.uber.org/goleak"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// inputs are the SLO files with golden rule files beside them.
var inputs = []string{
	"tickets-server-success-rate",
	"checkout-errors-30d",
	"search-latency-7d",
	"openslo-ratio",
}

func readSLO(t *testing.T, path string) SLO {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseOne(b)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return s
}

func TestGoldenRules(t *testing.T) {
	for _, name := range inputs {
		t.Run(name, func(t *testing.T) {
			s := readSLO(t, filepath.Join("testdata", name+".yaml"))
			got, err := GenerateRuleFile(s)
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", name+".rules.golden")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("rules differ from %s (run go test -update after checking the change):\n%s", golden, got)
			}
			// The library's own rule-file parser must accept what we export.
			if _, errs := rulefmt.Parse(got, false, model.UTF8Validation, promParser, promslog.NewNopLogger()); errs != nil {
				t.Errorf("rulefmt.Parse: %v", errs)
			}
		})
	}
}

func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (Debian package prometheus); skipping")
	}
	return p
}

func TestPromtoolCheckRules(t *testing.T) {
	pt := promtool(t)
	var slos []SLO
	for _, name := range inputs {
		slos = append(slos, readSLO(t, filepath.Join("testdata", name+".yaml")))
	}
	b, err := GenerateRuleFile(slos...)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(pt, "check", "rules", path).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "SUCCESS") {
		t.Fatalf("promtool check rules did not report success:\n%s", out)
	}
}

// TestPromtoolTestRules checks alert timings with Prometheus' own unit-test
// runner: the page alert must not fire before the 1h window has burnt
// enough, and fire after.
func TestPromtoolTestRules(t *testing.T) {
	pt := promtool(t)
	s := readSLO(t, filepath.Join("testdata", "promtool", "page-alert.slo.yaml"))
	b, err := GenerateRuleFile(s)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	test, err := os.ReadFile(filepath.Join("testdata", "promtool", "page-alert.test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "test.yaml"), test, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(pt, "test", "rules", filepath.Join(dir, "test.yaml")).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
}

func TestAlertWindows(t *testing.T) {
	f := func(window string, want ...float64) {
		t.Helper()
		d, err := ParseDuration(window)
		if err != nil {
			t.Fatal(err)
		}
		ws := AlertWindows(time.Duration(d))
		if len(ws) != len(want) {
			t.Fatalf("%s: %d windows, want %d", window, len(ws), len(want))
		}
		for i, w := range ws {
			if diff := w.Factor - want[i]; diff > 1e-12 || diff < -1e-12 {
				t.Errorf("%s %s/%s: factor %v, want %v", window, w.Severity, w.Name, w.Factor, want[i])
			}
		}
	}
	f("30d", 14.4, 6, 3, 1)
	f("28d", 13.44, 5.6, 2.8, 0.9333333333333333)
	f("14d", 6.72, 2.8, 1.4, 0.4666666666666667)
	f("7d", 3.36, 1.4, 0.7, 0.2333333333333333)
	ws := AlertWindows(30 * 24 * time.Hour)
	if ws[0].Factor != 14.4 || ws[1].Factor != 6 || ws[2].Factor != 3 || ws[3].Factor != 1 {
		t.Errorf("30d factors must be exactly the workbook's: %+v", ws)
	}
	got := RuleWindows(28 * 24 * time.Hour)
	var names []string
	for _, w := range got {
		names = append(names, Duration(w).String())
	}
	if strings.Join(names, ",") != "5m,30m,1h,2h,6h,1d,3d,28d" {
		t.Errorf("rule windows %v", names)
	}
}

func TestValidationErrors(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		_, err := Parse([]byte(in))
		if err == nil {
			t.Fatalf("no error for\n%s", in)
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	const ok = "name: a\nobjective: 0.99\nsli: {successRate: {service: s}}\n"
	if _, err := Parse([]byte(ok)); err != nil {
		t.Fatalf("valid SLO refused: %v", err)
	}
	f("name: a\nobjective: 99\nsli: {successRate: {service: s}}\n", "objective: 99 must be a ratio in (0, 1), e.g. 0.99 for 99%")
	f("name: a\nobjective: 0\nsli: {successRate: {service: s}}\n", "objective: 0 must be a ratio in (0, 1)")
	f("name: A b\nobjective: 0.9\nsli: {successRate: {service: s}}\n", `name: "A b" must be`)
	f("objective: 0.9\nsli: {successRate: {service: s}}\n", "name: is required")
	f(ok+"window: 1d\n", "window: 1d is not supported: use 7d, 14d, 28d or 30d")
	f(ok+"window: soon\n", `cannot parse "soon" as a duration`)
	f("name: a\nobjective: 0.9\nsli: {}\n", "sli: set exactly one of ratio, successRate and latency (found 0)")
	f("name: a\nobjective: 0.9\nsli: {successRate: {}}\n", "sli.successRate.service: is required")
	f("name: a\nobjective: 0.9\nsli: {ratio: {total: x_total}}\n", "sli.ratio: set exactly one of good and bad")
	f("name: a\nobjective: 0.9\nsli: {ratio: {bad: 'x_total{', total: x_total}}\n", "sli.ratio.bad: \"x_total{\" is not valid PromQL")
	f("name: a\nobjective: 0.9\nsli: {ratio: {bad: 'x_total / y', total: x_total}}\n", "sli.ratio.bad: \"x_total / y\": want a counter selector")
	f("name: a\nobjective: 0.9\nsli: {ratio: {bad: 'max(x_total)', total: x_total}}\n", "only sum() may wrap the counter, not max()")
	f("name: a\nobjective: 0.9\nsli: {ratio: {bad: 'x_total offset 5m', total: x_total}}\n", "offset, @ and range modifiers are not allowed")
	f("name: a\nobjective: 0.9\nsli: {ratio: {bad: e_total}}\n", "sli.ratio.total: is required")
	f("name: a\nobjective: 0.9\nsli: {latency: {service: s, threshold: 500ms}}\n", "sli.latency.threshold: 500ms is not a span-metrics bucket boundary; use one of 0.002s, 0.004s")
	f(ok+"groupBy: [cloud.region]\n", `groupBy[0]: "cloud.region" is not a Prometheus label name`)
	f(ok+"groupBy: [a, a]\n", `groupBy[1]: "a" is listed twice`)
	f(ok+"alerting: {labels: {slo: x}}\n", `alerting.labels: "slo" is set by trenchcoat`)
	f(ok+"alerting: {webhooks: [ftp://x]}\n", `alerting.webhooks[0]: "ftp://x" must be an http`)
	f(ok+"objectve: 0.9\n", "field objectve not found")
	f("apiVersion: sloth.slok.dev/v1\nkind: PrometheusServiceLevel\n", "only trenchcoat SLOs")
	f("", "no SLO found")
	// Several problems are all reported.
	f("name: a\nobjective: 2\nwindow: 2d\nsli: {successRate: {service: s}}\n", "objective: 2 must be a ratio in (0, 1), e.g. 0.99 for 99%; window: 2d")
}

func TestLatencyThresholds(t *testing.T) {
	f := func(threshold, le string) {
		t.Helper()
		s, err := ParseOne([]byte("name: a\nobjective: 0.9\nsli: {latency: {service: s, threshold: " + threshold + "}}\n"))
		if err != nil {
			t.Fatal(err)
		}
		if got := s.ErrorRatioExpr(5 * time.Minute).String(); !strings.Contains(got, `le="`+le+`"`) {
			t.Errorf("threshold %s: %s does not select le=%q", threshold, got, le)
		}
	}
	f("512ms", "0.512")
	f("0.002", "0.002")
	f("16.384s", "16.384")
	f("30s", "30")
	f("1m", "60")
}

func TestOpenSLO(t *testing.T) {
	s := readSLO(t, filepath.Join("testdata", "openslo-ratio.yaml"))
	if s.Name != "payments-success" || s.Objective != 0.995 || time.Duration(s.Window) != 14*24*time.Hour || s.Service != "payments" {
		t.Fatalf("imported %+v", s)
	}
	if s.SLI.Ratio == nil || s.SLI.Ratio.Good == "" || s.SLI.Ratio.Total != "payments_total" {
		t.Fatalf("ratio %+v", s.SLI.Ratio)
	}
	// The query wrapped in sum(rate(...)) is reduced to its selector.
	if got := s.ErrorRatioExpr(time.Hour).String(); !strings.Contains(got, `rate(payments_total{result="ok"}[1h])`) {
		t.Errorf("good selector not extracted: %s", got)
	}
	f := func(in, want string) {
		t.Helper()
		_, err := Parse([]byte(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want %q", err, want)
		}
	}
	head := "apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: p}\nspec:\n"
	ind := "  indicator: {spec: {ratioMetric: {counter: true, bad: {metricSource: {type: Prometheus, spec: {query: e_total}}}, total: {metricSource: {type: Prometheus, spec: {query: t_total}}}}}}\n"
	obj := "  objectives: [{target: 0.9}]\n"
	if _, err := Parse([]byte(head + ind + obj)); err != nil {
		t.Errorf("minimal OpenSLO refused: %v", err)
	}
	f("apiVersion: openslo/v1alpha\nkind: SLO\n", `apiVersion: "openslo/v1alpha" is not supported`)
	f("apiVersion: openslo/v1\nkind: SLI\n", `kind: "SLI" is not supported`)
	f(head+ind+obj+"  budgetingMethod: Timeslices\n", `spec.budgetingMethod: "Timeslices" is not supported`)
	f(head+obj, "spec.indicator.spec.ratioMetric: is required")
	f(head+ind+"  objectives: [{target: 0.9}, {target: 0.99}]\n", "spec.objectives: exactly one objective is supported, found 2")
	f(head+ind+obj+"  timeWindow: [{duration: 1M, calendar: {startTime: x}}]\n", "calendar windows are not supported")
	f(head+strings.Replace(ind, "type: Prometheus", "type: Datadog", 1)+obj, `spec.indicator.spec.ratioMetric.bad.metricSource.type: "Datadog" is not supported`)
	f(head+ind+"  objectives: [{target: 1.5}]\n", "objective: 1.5 must be a ratio")
}

func TestMarshalRoundTrip(t *testing.T) {
	for _, name := range inputs {
		s := readSLO(t, filepath.Join("testdata", name+".yaml"))
		b, err := Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		s2, err := ParseOne(b)
		if err != nil {
			t.Fatalf("%s: re-parsing marshalled SLO: %v\n%s", name, err, b)
		}
		r1, _ := GenerateRuleFile(s)
		r2, _ := GenerateRuleFile(s2)
		if !bytes.Equal(r1, r2) {
			t.Errorf("%s: rules changed after a round trip", name)
		}
	}
}

func TestMultiDocument(t *testing.T) {
	in := "name: a\nobjective: 0.9\nsli: {successRate: {service: s}}\n---\nname: b\nobjective: 0.9\nsli: {successRate: {service: t}}\n---\n"
	slos, err := Parse([]byte(in))
	if err != nil || len(slos) != 2 || slos[1].Name != "b" || slos[1].Service != "t" {
		t.Fatalf("%v %+v", err, slos)
	}
	_, err = Parse([]byte(in + "name: c\n"))
	if err == nil || !strings.Contains(err.Error(), "document 3") {
		t.Fatalf("error %v should name document 3", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range inputs {
		b, err := os.ReadFile(filepath.Join("testdata", name+".yaml"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("name: a\nobjective: 0.9\nsli: {ratio: {good: 'sum(rate(x[5m]))', total: y}}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		slos, err := Parse(b)
		if err != nil {
			return
		}
		// Whatever parses must generate rules that Prometheus can load.
		out, err := GenerateRuleFile(slos...)
		if err != nil {
			t.Fatalf("valid SLO failed to generate: %v", err)
		}
		if _, errs := rulefmt.Parse(out, false, model.UTF8Validation, promParser, promslog.NewNopLogger()); errs != nil {
			t.Fatalf("generated rules invalid: %v\n%s", errs, out)
		}
	})
}

func TestDemoSLO(t *testing.T) {
	s := DemoSLO()
	if s.Name != "tickets-server-success-rate" || s.Objective != 0.99 || time.Duration(s.Window) != 28*24*time.Hour ||
		s.SLI.SuccessRate == nil || s.SLI.SuccessRate.Service != "tickets-server" || strings.Join(s.GroupBy, ",") != "cloud_region,span_name" {
		t.Errorf("demo SLO %+v", s)
	}
}
