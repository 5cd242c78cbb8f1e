package slo

import (
	"bytes"
	"fmt"
	"maps"
	"strconv"
	"time"

	"github.com/prometheus/prometheus/promql/parser"
	"gopkg.in/yaml.v3"
)

// Label names the generated rules put on their series and alerts.
const (
	LabelSLO      = "slo"
	LabelSeverity = "severity"
)

// Recorded metric names besides the error ratios (Sloth's names, so that
// existing dashboards for Sloth-generated rules keep working).
const (
	ObjectiveMetric       = "slo:objective:ratio"
	ErrorBudgetMetric     = "slo:error_budget:ratio"
	BudgetRemainingMetric = "slo:period_error_budget_remaining:ratio"
)

// RuleFile is a Prometheus rule file.
type RuleFile struct {
	Groups []RuleGroup `yaml:"groups" json:"groups"`
}

// RuleGroup is one group of a rule file. Rules of a group are evaluated in
// order at the same timestamp, so alerts see this iteration's recordings.
type RuleGroup struct {
	Name  string `yaml:"name" json:"name"`
	Rules []Rule `yaml:"rules" json:"rules"`
}

// Rule is a recording rule (Record set) or an alerting rule (Alert set).
type Rule struct {
	Record      string            `yaml:"record,omitempty" json:"record,omitempty"`
	Alert       string            `yaml:"alert,omitempty" json:"alert,omitempty"`
	Expr        string            `yaml:"expr" json:"expr"`
	For         string            `yaml:"for,omitempty" json:"for,omitempty"`
	Labels      map[string]string `yaml:"labels,omitempty" json:"labels,omitempty"`
	Annotations map[string]string `yaml:"annotations,omitempty" json:"annotations,omitempty"`
}

// GroupName is the rule group name of an SLO.
func GroupName(sloName string) string { return "slo:" + sloName }

// Rules generates the rule group of a valid SLO: error-ratio recording rules
// for every window, objective and budget recordings, and the page and ticket
// burn-rate alerts.
func Rules(s SLO) (RuleGroup, error) {
	if err := s.Validate(); err != nil {
		return RuleGroup{}, err
	}
	sloLabels := map[string]string{LabelSLO: s.Name}
	g := RuleGroup{Name: GroupName(s.Name)}
	window := time.Duration(s.Window)
	for _, w := range RuleWindows(window) {
		g.Rules = append(g.Rules, Rule{Record: RatioMetric(w), Expr: s.ErrorRatioExpr(w).String(), Labels: sloLabels})
	}
	budget := paren(binary(parser.SUB, number(1), number(s.Objective)))
	g.Rules = append(g.Rules,
		Rule{Record: ObjectiveMetric, Expr: call("vector", number(s.Objective)).String(), Labels: sloLabels},
		Rule{Record: ErrorBudgetMetric, Expr: call("vector", budget).String(), Labels: sloLabels},
		Rule{
			Record: BudgetRemainingMetric,
			Expr:   binary(parser.SUB, number(1), binary(parser.DIV, recorded(s.Name, window), budget)).String(),
			Labels: sloLabels,
		},
	)
	if s.Alerting.Disabled {
		return g, nil
	}
	for _, sev := range []string{"page", "ticket"} {
		opts := s.Alerting.Page
		if sev == "ticket" {
			opts = s.Alerting.Ticket
		}
		if opts.Disabled {
			continue
		}
		g.Rules = append(g.Rules, alertRule(s, sev, opts))
	}
	return g, nil
}

// recorded selects a recorded error ratio of one SLO.
func recorded(sloName string, w time.Duration) *parser.VectorSelector {
	return selector(RatioMetric(w), eq(LabelSLO, sloName))
}

func alertRule(s SLO, sev string, opts AlertOptions) Rule {
	var expr parser.Expr
	var desc bytes.Buffer
	for _, w := range AlertWindows(time.Duration(s.Window)) {
		if w.Severity != sev {
			continue
		}
		threshold := paren(binary(parser.MUL, number(w.Factor), paren(binary(parser.SUB, number(1), number(s.Objective)))))
		// Long window first, so the alert's value is the long window's
		// error ratio.
		pair := paren(binary(parser.LAND,
			binary(parser.GTR, recorded(s.Name, w.LongWindow), threshold),
			binary(parser.GTR, recorded(s.Name, w.ShortWindow), threshold)))
		if expr == nil {
			expr = pair
		} else {
			expr = binary(parser.LOR, expr, pair)
		}
		if desc.Len() > 0 {
			desc.WriteString(", or ")
		}
		fmt.Fprintf(&desc, "%sx over %s and %s", strconv.FormatFloat(w.Factor, 'g', 4, 64), Duration(w.LongWindow), Duration(w.ShortWindow))
	}
	lbls := map[string]string{LabelSeverity: sev}
	maps.Copy(lbls, s.Alerting.Labels)
	maps.Copy(lbls, opts.Labels)
	lbls[LabelSLO] = s.Name
	if s.Service != "" && lbls["service"] == "" {
		lbls["service"] = s.Service
	}
	ann := map[string]string{
		"summary": fmt.Sprintf("SLO %s is burning its error budget too fast (%s)", s.Name, sev),
		"description": fmt.Sprintf("The error ratio is {{ $value | humanizePercentage }}; the objective of %s%% allows %s%%. Burn-rate thresholds: %s of the %s window.",
			formatPercent(s.Objective), formatPercent(s.ErrorBudget()), desc.String(), s.Window),
	}
	maps.Copy(ann, s.Alerting.Annotations)
	maps.Copy(ann, opts.Annotations)
	return Rule{Alert: s.Alerting.Name, Expr: expr.String(), Labels: lbls, Annotations: ann}
}

// formatPercent prints a ratio as a percentage without float noise
// (0.99 -> "99", 1-0.999 -> "0.1").
func formatPercent(r float64) string {
	return strconv.FormatFloat(r*100, 'g', 10, 64)
}

// GenerateRuleFile returns the Prometheus rule file (YAML) for valid SLOs,
// one group per SLO in the order given.
func GenerateRuleFile(slos ...SLO) ([]byte, error) {
	var f RuleFile
	for _, s := range slos {
		g, err := Rules(s)
		if err != nil {
			return nil, err
		}
		f.Groups = append(f.Groups, g)
	}
	if f.Groups == nil {
		f.Groups = []RuleGroup{}
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(f); err != nil {
		return nil, fmt.Errorf("encoding rule file: %w", err)
	}
	return b.Bytes(), enc.Close()
}
