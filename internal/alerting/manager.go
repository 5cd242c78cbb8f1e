// Package alerting evaluates the rules generated from SLOs in-process,
// keeps alert state, sends notifications to Alertmanager and webhooks,
// keeps the SLO registry, and computes SLO status (error budget, burn rates).
//
// Evaluation reuses github.com/prometheus/prometheus/rules rather than an
// evaluator of our own: its groups evaluate recording and alerting rules
// exactly as a Prometheus server does (aligned evaluation timestamps, rules
// in order at one timestamp, pending/firing/resolved transitions, `for`,
// resend delay, ValidUntil, ALERTS series, staleness markers), so the same
// rule file behaves the same here, in promtool and in Prometheus. It is also
// less code to own. Rules reach it through a GroupLoader that serves the
// generated rule files from memory instead of from disk.
package alerting

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/storage"

	"github.com/trenchcoat/trenchcoat/internal/slo"
)

// Config configures a Manager.
type Config struct {
	// Interval between rule evaluations (default 15s). The first
	// evaluation happens within two intervals of Start.
	Interval time.Duration
	// AlertmanagerURLs are Alertmanager base URLs ("http://host:9093");
	// alerts are posted to <url>/api/v2/alerts.
	AlertmanagerURLs []string
	// ResendDelay is how often a firing alert is sent again (default 1m,
	// as in Prometheus).
	ResendDelay time.Duration
	// ExternalURL is the address of this server, used in alerts'
	// generatorURL (optional).
	ExternalURL string
	// Registerer receives self-metrics; nil means none are registered.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// Manager evaluates SLO rules and notifies about their alerts. Its methods
// are safe for concurrent use.
type Manager struct {
	cfg    Config
	engine *promql.Engine
	q      storage.Queryable
	rules  *rules.Manager
	loader *memLoader
	notif  *notifier
	logger *slog.Logger

	mu   sync.RWMutex
	slos map[string]slo.SLO

	lifeMu   sync.Mutex
	started  bool
	stopped  bool
	cancel   context.CancelFunc
	runDone  chan struct{}
	notiDone chan struct{}
}

// New builds a Manager. Recording-rule output and ALERTS series are
// appended to a; queries read q. It does nothing until Start.
func New(cfg Config, engine *promql.Engine, q storage.Queryable, a storage.Appendable) (*Manager, error) {
	if engine == nil || q == nil || a == nil {
		return nil, errors.New("alerting: engine, queryable and appendable are required")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 15 * time.Second
	}
	if cfg.ResendDelay <= 0 {
		cfg.ResendDelay = time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	var ext *url.URL
	if cfg.ExternalURL != "" {
		u, err := url.Parse(cfg.ExternalURL)
		if err != nil {
			return nil, fmt.Errorf("alerting: external URL: %w", err)
		}
		ext = u
	}
	amURLs := make([]string, 0, len(cfg.AlertmanagerURLs))
	for _, u := range cfg.AlertmanagerURLs {
		pu, err := url.Parse(u)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			return nil, fmt.Errorf("alerting: Alertmanager URL %q: want http(s)://host:port", u)
		}
		amURLs = append(amURLs, u)
	}
	m := &Manager{
		cfg:    cfg,
		engine: engine,
		q:      q,
		loader: &memLoader{files: map[string][]byte{}, parser: parser.NewParser(parser.Options{})},
		logger: cfg.Logger,
		slos:   map[string]slo.SLO{},
	}
	m.notif = newNotifier(amURLs, m.webhooksFor, cfg.Registerer, cfg.Logger)
	m.rules = rules.NewManager(&rules.ManagerOptions{
		ExternalURL:  ext,
		QueryFunc:    rules.EngineQueryFunc(engine, q),
		NotifyFunc:   m.notify,
		Context:      context.Background(),
		AppendableV2: appendableV2(a),
		Queryable:    q,
		Logger:       cfg.Logger.With("component", "rules"),
		Registerer:   cfg.Registerer,
		ResendDelay:  cfg.ResendDelay,
		GroupLoader:  m.loader,
		// Alerts that were firing before a restart are restored from the
		// ALERTS_FOR_STATE series, as Prometheus does.
		OutageTolerance: time.Hour,
		ForGracePeriod:  10 * time.Minute,
	})
	return m, nil
}

// SetSLOs replaces the evaluated rules with those of slos. Alert state of
// SLOs whose rules did not change is kept. Before Start the rules are only
// kept, and loaded by Start: rules.Manager cannot replace groups that have
// never run.
func (m *Manager) SetSLOs(slos []slo.SLO) error {
	files := map[string][]byte{}
	byName := map[string]slo.SLO{}
	for _, s := range slos {
		if _, dup := byName[s.Name]; dup {
			return fmt.Errorf("SLO %q is defined twice", s.Name)
		}
		b, err := slo.GenerateRuleFile(s)
		if err != nil {
			return err
		}
		// Check here, where the error can still be returned with its
		// cause: rules.Manager.Update only logs it.
		if _, errs := m.loader.parse(b); errs != nil {
			return fmt.Errorf("SLO %q: generated rules are invalid: %w", s.Name, errors.Join(errs...))
		}
		files[ruleFileID(s.Name)] = b
		byName[s.Name] = s
	}
	m.lifeMu.Lock()
	defer m.lifeMu.Unlock()
	m.loader.set(files)
	if m.started && !m.stopped {
		if err := m.update(); err != nil {
			return err
		}
	}
	m.mu.Lock()
	m.slos = byName
	m.mu.Unlock()
	return nil
}

// update loads the loader's current files into the rules manager.
func (m *Manager) update() error {
	ids := m.loader.ids()
	if err := m.rules.Update(m.cfg.Interval, ids, labels.EmptyLabels(), m.cfg.ExternalURL, nil); err != nil {
		return fmt.Errorf("loading SLO rules: %w", err)
	}
	return nil
}

func ruleFileID(sloName string) string { return "slo/" + sloName + ".rules.yaml" }

// SLO returns a loaded SLO by name.
func (m *Manager) SLO(name string) (slo.SLO, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	s, ok := m.slos[name]
	return s, ok
}

func (m *Manager) webhooksFor(sloName string) []string {
	s, ok := m.SLO(sloName)
	if !ok {
		return nil
	}
	return s.Alerting.Webhooks
}

// Start begins evaluating rules and sending notifications. ctx is only
// used for starting; Shutdown stops everything.
func (m *Manager) Start(_ context.Context) error {
	m.lifeMu.Lock()
	defer m.lifeMu.Unlock()
	if m.stopped {
		return errors.New("alerting: Start after Shutdown")
	}
	if m.started {
		return errors.New("alerting: already started")
	}
	if err := m.update(); err != nil {
		return err
	}
	m.started = true
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	m.runDone = make(chan struct{})
	m.notiDone = make(chan struct{})
	go func() { defer close(m.runDone); m.rules.Run() }()
	go func() { defer close(m.notiDone); m.notif.run(ctx) }()
	return nil
}

// Shutdown stops evaluation, then gives queued notifications until ctx is
// done to be sent. It is safe to call twice and without Start.
func (m *Manager) Shutdown(ctx context.Context) error {
	m.lifeMu.Lock()
	defer m.lifeMu.Unlock()
	if m.stopped {
		return nil
	}
	m.stopped = true
	if !m.started {
		// rules.Manager.Stop waits for groups that only run once Run has
		// been called, so run it to let them see the stop.
		done := make(chan struct{})
		go func() { defer close(done); m.rules.Run() }()
		m.rules.Stop()
		<-done
		return nil
	}
	m.rules.Stop()
	<-m.runDone
	m.notif.close()
	select {
	case <-m.notiDone:
	case <-ctx.Done():
		m.cancel()
		<-m.notiDone
	}
	m.cancel()
	return nil
}

// notify is the rules.NotifyFunc: it runs in a rule group's goroutine, so
// it only queues.
func (m *Manager) notify(_ context.Context, expr string, alerts ...*rules.Alert) {
	if len(alerts) == 0 {
		return
	}
	out := make([]amAlert, 0, len(alerts))
	for _, a := range alerts {
		n := amAlert{
			Labels:       a.Labels.Map(),
			Annotations:  a.Annotations.Map(),
			StartsAt:     a.FiredAt,
			GeneratorURL: m.generatorURL(expr),
		}
		if !a.ResolvedAt.IsZero() {
			n.EndsAt = a.ResolvedAt
		} else {
			n.EndsAt = a.ValidUntil
		}
		out = append(out, n)
	}
	m.notif.enqueue(out)
}

func (m *Manager) generatorURL(expr string) string {
	if m.cfg.ExternalURL == "" {
		return ""
	}
	return m.cfg.ExternalURL + "/graph?g0.expr=" + url.QueryEscape(expr) + "&g0.tab=1"
}

// Alert is one active (pending or firing) alert.
type Alert struct {
	Name        string            `json:"name"`
	SLO         string            `json:"slo,omitempty"`
	Severity    string            `json:"severity,omitempty"`
	State       string            `json:"state"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	ActiveAt    time.Time         `json:"activeAt"`
	FiredAt     *time.Time        `json:"firedAt,omitempty"`
	Value       float64           `json:"value"`
}

// RuleState is the state of one alerting rule: "inactive", "pending",
// "firing", or "unknown" before its first evaluation.
type RuleState struct {
	Name      string    `json:"name"`
	SLO       string    `json:"slo"`
	Severity  string    `json:"severity"`
	State     string    `json:"state"`
	Health    string    `json:"health"`
	LastError string    `json:"lastError,omitempty"`
	LastEval  time.Time `json:"lastEvaluation"`
	Alerts    []Alert   `json:"alerts"`
}

// Alerts lists active alerts of all SLOs, firing first, then by labels.
func (m *Manager) Alerts() []Alert {
	var out []Alert
	for _, r := range m.rules.AlertingRules() {
		out = append(out, convertAlerts(r)...)
	}
	sortAlerts(out)
	return out
}

// RuleStates lists the alerting rules of one SLO (page first). Before the
// rules are loaded (before Start) their state is "unknown".
func (m *Manager) RuleStates(sloName string) []RuleState {
	out := m.loadedRuleStates(sloName)
	if out != nil {
		return out
	}
	s, ok := m.SLO(sloName)
	if !ok {
		return nil
	}
	g, err := slo.Rules(s)
	if err != nil {
		return nil
	}
	out = []RuleState{}
	for _, r := range g.Rules {
		if r.Alert != "" {
			out = append(out, RuleState{
				Name: r.Alert, SLO: sloName, Severity: r.Labels[slo.LabelSeverity],
				State: "unknown", Health: string(rules.HealthUnknown), Alerts: []Alert{},
			})
		}
	}
	return out
}

func (m *Manager) loadedRuleStates(sloName string) []RuleState {
	var out []RuleState
	for _, g := range m.rules.RuleGroups() {
		if g.Name() != slo.GroupName(sloName) {
			continue
		}
		for _, r := range g.AlertingRules() {
			rs := RuleState{
				Name:     r.Name(),
				SLO:      sloName,
				Severity: r.Labels().Get(slo.LabelSeverity),
				State:    r.State().String(),
				Health:   string(r.Health()),
				LastEval: r.GetEvaluationTimestamp(),
				Alerts:   convertAlerts(r),
			}
			if err := r.LastError(); err != nil {
				rs.LastError = err.Error()
			}
			if rs.Alerts == nil {
				rs.Alerts = []Alert{}
			}
			out = append(out, rs)
		}
	}
	return out
}

func convertAlerts(r *rules.AlertingRule) []Alert {
	var out []Alert
	for _, a := range r.ActiveAlerts() {
		al := Alert{
			Name:        r.Name(),
			SLO:         a.Labels.Get(slo.LabelSLO),
			Severity:    a.Labels.Get(slo.LabelSeverity),
			State:       a.State.String(),
			Labels:      a.Labels.Map(),
			Annotations: a.Annotations.Map(),
			ActiveAt:    a.ActiveAt,
			Value:       a.Value,
		}
		if !a.FiredAt.IsZero() {
			t := a.FiredAt
			al.FiredAt = &t
		}
		out = append(out, al)
	}
	return out
}

func sortAlerts(as []Alert) {
	sort.SliceStable(as, func(i, j int) bool {
		if (as[i].State == "firing") != (as[j].State == "firing") {
			return as[i].State == "firing"
		}
		return labels.FromMap(as[i].Labels).String() < labels.FromMap(as[j].Labels).String()
	})
}

// memLoader is a rules.GroupLoader serving generated rule files from
// memory, keyed by a file-like identifier.
type memLoader struct {
	mu     sync.Mutex
	files  map[string][]byte
	parser parser.Parser
}

func (l *memLoader) set(files map[string][]byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.files = files
}

func (l *memLoader) ids() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Sorted(maps.Keys(l.files))
}

func (l *memLoader) parse(b []byte) (*rulefmt.RuleGroups, []error) {
	return rulefmt.Parse(b, false, model.UTF8Validation, l.parser, slog.New(slog.DiscardHandler))
}

func (l *memLoader) Load(identifier string, _ bool, _ model.ValidationScheme) (*rulefmt.RuleGroups, []error) {
	l.mu.Lock()
	b, ok := l.files[identifier]
	l.mu.Unlock()
	if !ok {
		return nil, []error{fmt.Errorf("%s: no such generated rule file", identifier)}
	}
	return l.parse(b)
}

func (l *memLoader) Parse(query string) (parser.Expr, error) { return l.parser.ParseExpr(query) }
