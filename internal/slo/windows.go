package slo

import (
	_ "embed"
	"fmt"
	"slices"
	"time"

	"gopkg.in/yaml.v3"
)

//go:embed windows.yaml
var windowsYAML []byte

// AlertWindow is one pair of a multi-window multi-burn-rate alert: it fires
// when the error ratio over both windows is above Factor times the error
// budget.
type AlertWindow struct {
	Severity string // "page" or "ticket"
	Name     string // "quick" or "slow"
	// BudgetPercent is the share of the whole error budget that burning at
	// Factor for LongWindow consumes.
	BudgetPercent float64
	LongWindow    time.Duration
	ShortWindow   time.Duration
	// Factor is the burn rate threshold, derived from the SLO window.
	Factor float64
}

type windowSpec struct {
	Name          string   `yaml:"name"`
	BudgetPercent float64  `yaml:"budgetPercent"`
	LongWindow    Duration `yaml:"longWindow"`
	ShortWindow   Duration `yaml:"shortWindow"`
}

var windowSpecs = func() map[string][]windowSpec {
	var w map[string][]windowSpec
	if err := yaml.Unmarshal(windowsYAML, &w); err != nil {
		panic("BUG: embedded windows.yaml: " + err.Error())
	}
	return w
}()

// AlertWindows returns the alert pairs for an SLO window, page first. The
// factor keeps each pair's budget share fixed across SLO windows, as Sloth
// does: factor = budgetPercent/100 * sloWindow / longWindow, i.e. 14.4, 6, 3
// and 1 for 30d, and 13.44, 5.6, 2.8 and 0.93 for 28d.
func AlertWindows(sloWindow time.Duration) []AlertWindow {
	var out []AlertWindow
	for _, sev := range []string{"page", "ticket"} {
		for _, w := range windowSpecs[sev] {
			out = append(out, AlertWindow{
				Severity:      sev,
				Name:          w.Name,
				BudgetPercent: w.BudgetPercent,
				LongWindow:    time.Duration(w.LongWindow),
				ShortWindow:   time.Duration(w.ShortWindow),
				// Multiply before dividing so the 30d factors come out exact.
				Factor: w.BudgetPercent * sloWindow.Hours() / time.Duration(w.LongWindow).Hours() / 100,
			})
		}
	}
	return out
}

// RuleWindows are the windows with error-ratio recording rules: every alert
// window, then the SLO window, shortest first.
func RuleWindows(sloWindow time.Duration) []time.Duration {
	var ws []time.Duration
	for _, w := range AlertWindows(sloWindow) {
		ws = append(ws, w.ShortWindow, w.LongWindow)
	}
	ws = append(ws, sloWindow)
	slices.Sort(ws)
	return slices.Compact(ws)
}

// RatioMetric names the recorded error ratio over window w, Sloth-style:
// slo:sli_error:ratio_rate5m.
func RatioMetric(w time.Duration) string {
	return fmt.Sprintf("slo:sli_error:ratio_rate%s", Duration(w))
}
