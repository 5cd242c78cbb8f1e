package logql

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/trenchcoat/trenchcoat/internal/store"
)

// Label names with a meaning of their own.
const (
	LabelLogGroup = "log_group"
	LabelLevel    = "level"
	// logGroupAttr is where log_group comes from; it is not a label itself.
	logGroupAttr = "aws.log.group.names"
)

// SanitizeLabel turns an attribute key into a label name: every character
// outside [A-Za-z0-9_] becomes "_", and a leading digit gets a "_" prefix.
func SanitizeLabel(k string) string {
	b := []byte(k)
	for i, c := range b {
		if !isIdentChar(c) {
			b[i] = '_'
		}
	}
	if len(b) > 0 && b[0] >= '0' && b[0] <= '9' {
		return "_" + string(b)
	}
	return string(b)
}

// StreamLabels are the labels of a row's stream.
func StreamLabels(r *store.LogRow) map[string]string {
	ls := make(map[string]string, len(r.Resource)+2)
	for k, v := range r.Resource {
		if k != logGroupAttr && v != "" {
			ls[SanitizeLabel(k)] = v
		}
	}
	if r.LogGroup != "" {
		ls[LabelLogGroup] = r.LogGroup
	}
	if r.SeverityText != "" {
		ls[LabelLevel] = strings.ToLower(r.SeverityText)
	}
	return ls
}

var (
	reMu    sync.Mutex
	reCache = map[string]*regexp.Regexp{}
)

func cachedRegexp(expr string) *regexp.Regexp {
	reMu.Lock()
	defer reMu.Unlock()
	if re, ok := reCache[expr]; ok {
		return re
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		re = nil
	}
	if len(reCache) > 1000 {
		clear(reCache)
	}
	reCache[expr] = re
	return re
}

// anchored matches whole values, like selector matchers and label filters.
func anchored(expr string) *regexp.Regexp { return cachedRegexp("^(?:" + expr + ")$") }

func (m Matcher) matches(v string) bool {
	switch m.Op {
	case MatchEq:
		return v == m.Value
	case MatchNeq:
		return v != m.Value
	}
	re := anchored(m.Value)
	return re != nil && re.MatchString(v) == (m.Op == MatchRegex)
}

func (f *LineFilter) matches(line string) bool {
	switch f.Op {
	case LineContains:
		return strings.Contains(line, f.Value)
	case LineNotContains:
		return !strings.Contains(line, f.Value)
	}
	re := cachedRegexp(f.Value)
	return re != nil && re.MatchString(line) == (f.Op == LineRegex)
}

func (c *LabelCmp) matches(ls map[string]string) bool {
	v := ls[c.Name]
	switch {
	case c.IsNum:
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return false
		}
		return cmpOrder(compareFloat(f, c.Num), c.Op)
	case c.IsDur:
		d, err := time.ParseDuration(v)
		if err != nil {
			return false
		}
		return cmpOrder(compareFloat(float64(d), float64(c.Dur)), c.Op)
	}
	switch c.Op {
	case CmpEq:
		return v == c.Str
	case CmpNeq:
		return v != c.Str
	case CmpRegex, CmpNotRegex:
		re := anchored(c.Str)
		return re != nil && re.MatchString(v) == (c.Op == CmpRegex)
	}
	return false
}

func compareFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func cmpOrder(c int, op LabelCmpOp) bool {
	switch op {
	case CmpEq, CmpEqEq:
		return c == 0
	case CmpNeq:
		return c != 0
	case CmpGt:
		return c > 0
	case CmpGe:
		return c >= 0
	case CmpLt:
		return c < 0
	case CmpLe:
		return c <= 0
	}
	return false
}

func matchLabels(x LabelExpr, ls map[string]string) bool {
	switch x := x.(type) {
	case *LabelCmp:
		return x.matches(ls)
	case *LabelBin:
		if x.And {
			return matchLabels(x.L, ls) && matchLabels(x.R, ls)
		}
		return matchLabels(x.L, ls) || matchLabels(x.R, ls)
	}
	panic("BUG: unknown label expression")
}

// addExtracted adds a parsed label; names clashing with stream labels get
// the suffix _extracted, as in Loki.
func addExtracted(ls map[string]string, stream map[string]string, k, v string) {
	k = SanitizeLabel(k)
	if k == "" {
		return
	}
	if _, clash := stream[k]; clash {
		k += "_extracted"
	}
	ls[k] = v
}

// parseJSON extracts the fields of a JSON object line; nested objects'
// keys are joined with "_". Arrays are skipped.
func parseJSON(line string, ls, stream map[string]string) bool {
	var obj map[string]any
	if err := json.Unmarshal([]byte(line), &obj); err != nil {
		return false
	}
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			name := prefix + k
			switch v := v.(type) {
			case map[string]any:
				walk(name+"_", v)
			case string:
				addExtracted(ls, stream, name, v)
			case float64:
				addExtracted(ls, stream, name, strconv.FormatFloat(v, 'f', -1, 64))
			case bool:
				addExtracted(ls, stream, name, strconv.FormatBool(v))
			case nil:
				addExtracted(ls, stream, name, "")
			}
		}
	}
	walk("", obj)
	return true
}

// parseLogfmt extracts key=value pairs; values may be double-quoted with
// Go escapes. A bare key gets the value "".
func parseLogfmt(line string, ls, stream map[string]string) bool {
	i := 0
	for i < len(line) {
		for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
			i++
		}
		ks := i
		for i < len(line) && line[i] != '=' && line[i] != ' ' && line[i] != '\t' {
			i++
		}
		key := line[ks:i]
		if i >= len(line) || line[i] != '=' {
			if key != "" {
				addExtracted(ls, stream, key, "")
			}
			continue
		}
		i++ // '='
		var val string
		if i < len(line) && line[i] == '"' {
			j := i + 1
			for j < len(line) && line[j] != '"' {
				if line[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(line) {
				return false
			}
			v, err := strconv.Unquote(line[i : j+1])
			if err != nil {
				v = line[i+1 : j]
			}
			val, i = v, j+1
		} else {
			vs := i
			for i < len(line) && line[i] != ' ' && line[i] != '\t' {
				i++
			}
			val = line[vs:i]
		}
		if key != "" {
			addExtracted(ls, stream, key, val)
		}
	}
	return true
}

// process runs the pipeline over one row. When filtered is true the store
// has applied the selector and line filters already. It returns the row's
// labels (stream labels plus extracted ones) and whether the row is kept.
func (e *LogExpr) process(r *store.LogRow, filtered bool) (map[string]string, bool) {
	stream := StreamLabels(r)
	if !filtered {
		for _, m := range e.Selector {
			if !m.matches(stream[m.Name]) {
				return nil, false
			}
		}
	}
	ls := stream
	copied := false
	for _, st := range e.Stages {
		switch st := st.(type) {
		case *LineFilter:
			if !filtered && !st.matches(r.Body) {
				return nil, false
			}
		case *ParserStage:
			if !copied {
				ls = make(map[string]string, len(stream)+8)
				for k, v := range stream {
					ls[k] = v
				}
				copied = true
			}
			ok := false
			if st.Format == "json" {
				ok = parseJSON(r.Body, ls, stream)
			} else {
				ok = parseLogfmt(r.Body, ls, stream)
			}
			if !ok {
				ls["__error__"] = strings.ToUpper(st.Format[:1]) + st.Format[1:] + "ParserErr"
			}
		case *LabelFilter:
			if !matchLabels(st.Expr, ls) {
				return nil, false
			}
		}
	}
	return ls, true
}

// codeStages reports whether the pipeline has stages only this package
// can run (parsers, label filters).
func (e *LogExpr) codeStages() bool {
	for _, st := range e.Stages {
		if _, ok := st.(*LineFilter); !ok {
			return true
		}
	}
	return false
}
