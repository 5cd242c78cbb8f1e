package investigate

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// causeClass maps message patterns to a class of cause. Classes are tried
// in order and a text counts for the first that matches, so the specific
// ones (a timeout while connecting means no free connection) come before
// the generic ones (any timeout).
type causeClass struct {
	Name string
	Re   *regexp.Regexp
	// OnDependency: the cause lives in the dependency the failing spans
	// call, not in the service itself.
	OnDependency bool
	Phrase       string // "<resource> <phrase>"
	Steps        []string
	// Metric matches the names of series that measure the exhausted
	// thing; the diagnosis cites such a series first.
	Metric *regexp.Regexp
}

var causeClasses = []causeClass{
	{"connection exhaustion", regexp.MustCompile(`(?i)too many (clients|connections)|connection slots|remaining connection|max_connections|connection pool (is )?(exhausted|full)|timeout exceeded when trying to connect|timeout (while )?acquiring|acquire.{0,20}time(d)? ?out|could not obtain (a )?connection|connection limit`), true,
		"ran out of connection slots",
		[]string{"check %s's connection limit (max_connections) against the connections its clients open", "size per-instance connection pools so that instances × pool size stays below the limit, or put a connection proxy (PgBouncer, RDS Proxy) in front", "resize %s or cap the client's scale-out"}, regexp.MustCompile(`(?i)connection`)},
	{"database restart", regexp.MustCompile(`(?i)recovery mode|terminating connection because|server closed the connection unexpectedly|the database system is (shutting down|starting up)`), true,
		"restarted or crashed",
		[]string{"read %s's logs around the onset for the crash cause", "check the instance's memory and storage"}, regexp.MustCompile(`(?i)uptime|restart|connection`)},
	{"throttling", regexp.MustCompile(`(?i)throttl|rate exceeded|too many requests|\b429\b|quota exceeded|slow down`), true,
		"throttled the requests (rate or concurrency limit reached)",
		[]string{"check %s's rate and concurrency limits", "add backoff with jitter to the callers", "request a higher quota"}, regexp.MustCompile(`(?i)throttl|concurren|rate_limit`)},
	{"out of memory", regexp.MustCompile(`(?i)out of memory|OutOfMemory|OOMKilled|heap space|cannot allocate memory`), false,
		"ran out of memory",
		[]string{"check %s's memory limit and usage", "look for a leak or an oversized batch since the onset"}, regexp.MustCompile(`(?i)mem`)},
	{"disk full", regexp.MustCompile(`(?i)no space left|disk (is )?full|storage full`), true,
		"ran out of disk space",
		[]string{"free or grow %s's storage", "check retention and log volume"}, regexp.MustCompile(`(?i)disk|storage|volume|fs_`)},
	{"dependency unreachable", regexp.MustCompile(`(?i)connection refused|no such host|ECONNREFUSED|network is unreachable|connection reset|host unreachable|name resolution|EHOSTUNREACH`), true,
		"is unreachable",
		[]string{"check %s is up and listening", "check DNS, security groups and network paths to it"}, regexp.MustCompile(`(?i)up\b|health|unhealthy`)},
	{"authorization failure", regexp.MustCompile(`(?i)permission denied|unauthori[sz]ed|forbidden|authentication failed|access denied|invalid credentials`), true,
		"rejects the caller's credentials",
		[]string{"check credentials and roles used to call %s", "look for a rotated secret or a changed policy"}, regexp.MustCompile(`(?i)auth|denied`)},
	{"code defect", regexp.MustCompile(`(?i)NullPointer|nil pointer|null reference|panic:|TypeError|is not a function|undefined is not|cannot read propert|segmentation fault|IndexOutOfBounds|index out of range|KeyError|AttributeError|ClassCastException|unhandled exception|NoSuchMethod`), false,
		"hits a code defect",
		[]string{"read the stack traces of %s's failing spans", "roll back the change that introduced it"}, regexp.MustCompile(`(?i)error|exception`)},
	{"timeout", regexp.MustCompile(`(?i)time(d)? ?out|deadline exceeded`), true,
		"is too slow to answer (timeouts)",
		[]string{"check %s's latency and saturation", "check the callers' timeouts and retries"}, regexp.MustCompile(`(?i)latency|duration|cpu`)},
}

func classify(text string) int {
	for i, c := range causeClasses {
		if c.Re.MatchString(text) {
			return i
		}
	}
	return -1
}

// diagnose combines the findings into a cause, a causal story and a
// paragraph. Each finding's text (messages, root-cause templates, log
// patterns) votes for the cause class it matches, weighted by its score;
// the resource is the dependency named by the root-cause spans for
// dependency-side causes, the service for the others.
func (v *inv) diagnose(rep *Report) {
	if len(rep.Findings) == 0 {
		if v.service == "" {
			rep.Diagnosis = "No errors found in the window."
		} else {
			rep.Diagnosis = fmt.Sprintf("No anomaly found for %s in the window: errors and durations are in line with the baseline.", v.service)
		}
		return
	}
	votes := make([]float64, len(causeClasses))
	texts := make([][]string, len(causeClasses))
	var logHit, timeoutHit, metricHit, scaleHit, deployHit, rootHit, topMsg, latHit, newVersion *Finding
	for i := range rep.Findings {
		f := &rep.Findings[i]
		var text string
		switch f.Check {
		case CheckMessages:
			text = f.Facts["example"]
			if topMsg == nil {
				topMsg = f
			}
		case CheckRootCause:
			text = f.Facts["template"]
			if rootHit == nil {
				rootHit = f
			}
		case CheckLogs:
			text = f.Facts["example"]
		case CheckDurations:
			if f.Facts["kind"] == "latency" && latHit == nil {
				latHit = f
			}
			if f.Facts["kind"] == "timeout" && (timeoutHit == nil || atoi(f.Facts["count"]) > atoi(timeoutHit.Facts["count"])) {
				timeoutHit = f
			}
		case CheckChanges:
			if f.Facts["kind"] == "scale-out" && scaleHit == nil {
				scaleHit = f
			}
			if f.Facts["bad"] == "true" && deployHit == nil {
				deployHit = f
			}
			if f.Facts["kind"] == "deploy" && newVersion == nil {
				newVersion = f
			}
		}
		if text == "" {
			continue
		}
		if c := classify(text); c >= 0 {
			w := f.Score
			if f.Check == CheckLogs {
				w *= 0.5 // logs corroborate; spans of the failing service decide
			}
			votes[c] += w
			if f.Check == CheckMessages {
				texts[c] = append(texts[c], fmt.Sprintf("%q (%s spans)", f.Facts["example"], f.Facts["count"]))
			}
			if f.Check == CheckLogs && logHit == nil {
				logHit = f
			}
		}
	}
	best := -1
	for i, w := range votes {
		if w > 0 && (best < 0 || w > votes[best]) {
			best = i
		}
	}
	metricHit = metricFor(rep.Findings, best)
	impact := v.impact()
	var para strings.Builder
	var story []string
	add := func(f *Finding) {
		if f != nil {
			story = append(story, f.Title)
		}
	}

	switch {
	case deployHit != nil && (best < 0 || causeClasses[best].Name == "code defect" || !causeClasses[best].OnDependency):
		ver := deployHit.Facts["values"]
		rep.Cause = "bad deploy"
		rep.Resource = deployHit.Facts["service"]
		fmt.Fprintf(&para, "%s requests fail%s because of a bad deploy: %s %s of %s, new in the window, fails far more often than the previous versions.", v.service, impact, deployHit.Facts["key"], ver, rep.Resource)
		if topMsg != nil {
			fmt.Fprintf(&para, " Its error spans say %q (%s spans).", topMsg.Facts["example"], topMsg.Facts["count"])
		}
		// Where it runs and fails: resource attributes (zone, host) say
		// where the new version landed, span attributes which requests
		// it breaks.
		// Few-valued keys (a zone, a region) first: they say more than the
		// one instance that runs the new version.
		var attrs []Finding
		for _, f := range rep.Findings {
			if f.Check == CheckAttributes && f.Facts["key"] != deployHit.Facts["key"] {
				attrs = append(attrs, f)
			}
		}
		sort.SliceStable(attrs, func(i, j int) bool {
			ri, rj := strings.HasPrefix(attrs[i].Facts["scope"], "resource."), strings.HasPrefix(attrs[j].Facts["scope"], "resource.")
			if ri != rj {
				return ri
			}
			return atoi(attrs[i].Facts["cardinality"]) < atoi(attrs[j].Facts["cardinality"])
		})
		var where []string
		seenVal := map[string]bool{}
		for _, f := range attrs {
			// Two keys with one value (a task ARN as aws.ecs.task.arn and
			// cloud.resource_id) are one fact.
			if len(where) < 3 && !seenVal[f.Facts["value"]] {
				seenVal[f.Facts["value"]] = true
				where = append(where, f.Facts["scope"]+" = "+f.Facts["value"])
			}
		}
		if len(where) > 0 {
			fmt.Fprintf(&para, " Errors concentrate where %s.", strings.Join(where, ", "))
		}
		rep.NextSteps = []string{
			fmt.Sprintf("roll back %s to the previous version", rep.Resource),
			fmt.Sprintf("compare %s %s with the previous version (diff, config)", deployHit.Facts["key"], ver),
			"read the stack traces of the failing spans",
		}
		add(deployHit)
		add(rootHit)
		add(topMsg)
	case best >= 0:
		cc := causeClasses[best]
		rep.Cause = cc.Name
		res := v.service
		if rootHit != nil && rootHit.Facts["service"] != "" {
			res = rootHit.Facts["service"] // where the errors start
		}
		if cc.OnDependency {
			if d := v.depFor(best); d != "" {
				res = d
			}
		}
		rep.Resource = res
		fmt.Fprintf(&para, "%s requests fail%s because %s %s (%s).", v.service, impact, res, cc.Phrase, cc.Name)
		if len(texts[best]) > 0 {
			n := min(3, len(texts[best]))
			fmt.Fprintf(&para, " Error spans say %s.", strings.Join(texts[best][:n], ", "))
		}
		if rootHit != nil {
			fmt.Fprintf(&para, " %s.", strings.TrimSuffix(rootHit.Summary, "."))
		}
		if timeoutHit != nil {
			fmt.Fprintf(&para, " %s.", timeoutHit.Title)
		}
		if logHit != nil {
			fmt.Fprintf(&para, " Logs: %s.", logHit.Title)
		}
		if metricHit != nil {
			fmt.Fprintf(&para, " Metrics: %s.", metricHit.Title)
		}
		if scaleHit != nil {
			fmt.Fprintf(&para, " Before it, %s.", scaleHit.Title)
		}
		for _, s := range cc.Steps {
			if strings.Contains(s, "%s") {
				s = fmt.Sprintf(s, res)
			}
			rep.NextSteps = append(rep.NextSteps, s)
		}
		add(scaleHit)
		add(deployHit)
		add(metricHit)
		add(logHit)
		add(rootHit)
		if topMsg != nil && classify(topMsg.Facts["example"]) == best {
			add(topMsg)
		}
		add(timeoutHit)
	case best < 0 && latHit != nil && !v.elevated():
		// No error incident, but requests got slower: a latency story.
		rep.Cause = "slowdown"
		rep.Resource = v.service
		fmt.Fprintf(&para, "%s requests slowed down: %s.", v.service, strings.TrimSuffix(latHit.Summary, "."))
		if timeoutHit != nil {
			fmt.Fprintf(&para, " %s.", timeoutHit.Title)
		}
		if metricHit != nil {
			fmt.Fprintf(&para, " Metrics: %s.", metricHit.Title)
		}
		if newVersion != nil {
			fmt.Fprintf(&para, " Before it, %s.", newVersion.Title)
		}
		if scaleHit != nil {
			fmt.Fprintf(&para, " Before it, %s.", scaleHit.Title)
		}
		rep.NextSteps = []string{
			fmt.Sprintf("compare traces of %s %q before and after the onset: which child span grew", v.service, latHit.Facts["operation"]),
			"check the saturation of its dependencies (CPU, connections, queue depth)",
		}
		if newVersion != nil {
			rep.NextSteps = append(rep.NextSteps, "roll back the new version if the slowdown started with it")
		}
		add(newVersion)
		add(scaleHit)
		add(metricHit)
		add(latHit)
		add(timeoutHit)
	default:
		// No known class: fall back to the dominant error template.
		rep.Cause = "errors"
		rep.Resource = v.service
		if rootHit != nil && rootHit.Facts["resource"] != "" {
			rep.Resource = rootHit.Facts["resource"]
		}
		fmt.Fprintf(&para, "%s requests fail%s.", v.service, impact)
		if topMsg != nil {
			rep.Cause = "errors: " + topMsg.Facts["template"]
			fmt.Fprintf(&para, " The dominant error is %q (%s spans).", topMsg.Facts["example"], topMsg.Facts["count"])
		}
		if rootHit != nil {
			fmt.Fprintf(&para, " %s.", strings.TrimSuffix(rootHit.Summary, "."))
		}
		if timeoutHit != nil {
			fmt.Fprintf(&para, " %s.", timeoutHit.Title)
		}
		rep.NextSteps = []string{"open the sample errored traces and read the root-cause spans", "compare with the latest changes to the service and its dependencies"}
		add(rootHit)
		add(topMsg)
		add(timeoutHit)
		add(logHit)
		add(metricHit)
	}
	for _, f := range rep.Findings {
		if f.Check == CheckErrors {
			story = append(story, f.Title)
			break
		}
	}
	rep.Story = story
	if len(rep.NextSteps) > 0 {
		fmt.Fprintf(&para, " Suggested next steps: %s.", strings.Join(rep.NextSteps, "; "))
	}
	rep.Diagnosis = para.String()
	// Findings that support the diagnosis rank first among equals.
	if rep.Resource != "" {
		for i := range rep.Findings {
			f := &rep.Findings[i]
			supports := strings.Contains(f.Title+f.Summary, rep.Resource) || (best >= 0 && classify(f.Facts["example"]+" "+f.Facts["template"]) == best)
			if f.Check == CheckMetrics {
				// A metric supports the cause when it measures what ran out.
				supports = f == metricHit || best >= 0 && causeClasses[best].Metric.MatchString(f.Facts["metric"])
			}
			if supports {
				f.Score = clamp01(f.Score + 0.1)
			}
		}
		sort.SliceStable(rep.Findings, func(i, j int) bool { return rep.Findings[i].Score > rep.Findings[j].Score })
	}
}

// metricFor picks the metric finding the diagnosis cites: the strongest
// of the resource's own series that measures what the cause class
// exhausts (connections for connection exhaustion), else the strongest.
func metricFor(fs []Finding, class int) *Finding {
	var first *Finding
	for i := range fs {
		f := &fs[i]
		if f.Check != CheckMetrics {
			continue
		}
		if first == nil {
			first = f
		}
		if class >= 0 && causeClasses[class].Metric != nil && f.Facts["derived"] != "true" && causeClasses[class].Metric.MatchString(f.Facts["metric"]) {
			return f
		}
	}
	return first
}

// depFor is the dependency of the root-cause spans whose messages match
// class c, else the most frequent dependency.
func (v *inv) depFor(c int) string {
	deps := append([]dependency(nil), v.deps...)
	sort.SliceStable(deps, func(i, j int) bool { return deps[i].Count > deps[j].Count })
	for _, d := range deps {
		for _, m := range d.Messages {
			if classify(m) == c && d.ID != "" {
				return d.ID
			}
		}
	}
	for _, d := range deps {
		if d.ID != "" {
			return d.ID
		}
	}
	return ""
}

func (v *inv) impact() string {
	if v.totWin == 0 {
		return ""
	}
	s := fmt.Sprintf(" (%s of its spans in error", pct(v.errWin/v.totWin))
	if v.totBase > 0 {
		s += " against " + pct(v.errBase/v.totBase) + " in the baseline"
	}
	return s + ")"
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}
