package investigate

import (
	"sort"
	"strings"
)

// Drain clusters log lines into templates, after He et al., "Drain: An
// Online Log Parsing Approach with Fixed Depth Tree" (ICWS 2017), reduced
// to what the detective needs: lines are masked (numbers, ids), split into
// tokens, grouped by token count and first token, and joined to the most
// similar cluster of the group when at least Threshold of the tokens agree;
// disagreeing positions become the wildcard "<*>". Not safe for concurrent
// use.
type Drain struct {
	Threshold   float64 // default 0.5
	MaxClusters int     // per group; default 100
	groups      map[string][]*Cluster
	all         []*Cluster
}

// Cluster is one template with how many lines it absorbed.
type Cluster struct {
	Tokens   []string
	Count    int
	Example  string
	Severity map[string]int
}

// Template is the cluster's text with wildcards.
func (c *Cluster) Template() string { return strings.Join(c.Tokens, " ") }

const wildcard = "<*>"

// NewDrain returns an empty Drain.
func NewDrain() *Drain {
	return &Drain{Threshold: 0.5, MaxClusters: 100, groups: map[string][]*Cluster{}}
}

// Add files line (with its severity text) and returns its cluster.
func (d *Drain) Add(line, severity string) *Cluster {
	toks := strings.Fields(Template(line))
	if len(toks) == 0 {
		toks = []string{""}
	}
	key := groupKey(toks)
	var best *Cluster
	bestSim := -1.0
	for _, c := range d.groups[key] {
		if s := similarity(c.Tokens, toks); s > bestSim {
			best, bestSim = c, s
		}
	}
	if best == nil || bestSim < d.Threshold {
		if len(d.groups[key]) >= d.MaxClusters && best != nil {
			// Full: absorb into the nearest rather than grow without bound.
			merge(best, toks)
		} else {
			best = &Cluster{Tokens: append([]string(nil), toks...), Example: line, Severity: map[string]int{}}
			d.groups[key] = append(d.groups[key], best)
			d.all = append(d.all, best)
		}
	} else {
		merge(best, toks)
	}
	best.Count++
	best.Severity[strings.ToLower(severity)]++
	return best
}

// Match returns the cluster line would join, without changing anything.
func (d *Drain) Match(line string) *Cluster {
	toks := strings.Fields(Template(line))
	if len(toks) == 0 {
		toks = []string{""}
	}
	var best *Cluster
	bestSim := -1.0
	for _, c := range d.groups[groupKey(toks)] {
		if s := similarity(c.Tokens, toks); s > bestSim {
			best, bestSim = c, s
		}
	}
	if bestSim < d.Threshold {
		return nil
	}
	return best
}

// Clusters returns every cluster, largest first.
func (d *Drain) Clusters() []*Cluster {
	out := append([]*Cluster(nil), d.all...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Count > out[j].Count })
	return out
}

// groupKey is the token count plus the first token, unless that token is
// a placeholder (then lines starting with different numbers still meet).
func groupKey(toks []string) string {
	first := toks[0]
	if strings.HasPrefix(first, "<") {
		first = wildcard
	}
	return string(rune('0'+min(len(toks), 200))) + "\x00" + first
}

func similarity(tmpl, toks []string) float64 {
	if len(tmpl) != len(toks) {
		return 0
	}
	same := 0
	for i := range tmpl {
		if tmpl[i] == toks[i] || tmpl[i] == wildcard {
			same++
		}
	}
	return float64(same) / float64(len(toks))
}

func merge(c *Cluster, toks []string) {
	for i := range c.Tokens {
		if i < len(toks) && c.Tokens[i] != toks[i] {
			c.Tokens[i] = wildcard
		}
	}
}

// topSeverity is the most severe severity the cluster has seen.
func (c *Cluster) topSeverity() string {
	best, rank := "", -1
	for s := range c.Severity {
		if r := severityRank(s); r > rank || (r == rank && s < best) {
			best, rank = s, r
		}
	}
	return best
}

func severityRank(s string) int {
	switch strings.ToLower(s) {
	case "panic", "fatal", "fatal2", "fatal3", "fatal4", "critical", "emergency", "alert":
		return 5
	case "error", "err", "error2", "error3", "error4":
		return 4
	case "warn", "warning":
		return 3
	case "info", "notice", "log":
		return 2
	case "debug", "trace":
		return 1
	}
	return 0
}
