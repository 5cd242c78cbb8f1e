package logql

import (
	"errors"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParse(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		q, err := Parse(in)
		if err != nil {
			t.Fatalf("Parse(%q): %v", in, err)
		}
		if got := q.String(); got != want {
			t.Fatalf("Parse(%q)\n got: %s\nwant: %s", in, got, want)
		}
		q2, err := Parse(want)
		if err != nil || q2.String() != want {
			t.Fatalf("round trip of %q: %v", want, err)
		}
	}
	f(`{service_name="tickets-server"}`, `{service_name="tickets-server"}`)
	f(`{ service_name = "a" , cloud_region != "b" }`, `{service_name="a", cloud_region!="b"}`)
	f(`{log_group=~"/aws/rds/.*", level!~"debug|info"}`, `{log_group=~"/aws/rds/.*", level!~"debug|info"}`)
	f("{a=`raw\\d`}", `{a="raw\\d"}`)
	f(`{a="x"} |= "FATAL"`, `{a="x"} |= "FATAL"`)
	f(`{a="x"} != "health"`, `{a="x"} != "health"`)
	f(`{a="x"} |~ "time(out)?"`, `{a="x"} |~ "time(out)?"`)
	f(`{a="x"} !~ "^GET"`, `{a="x"} !~ "^GET"`)
	f(`{a="x"} |= "a" |= "b" != "c" |~ "d" !~ "e"`, `{a="x"} |= "a" |= "b" != "c" |~ "d" !~ "e"`)
	f(`{a="x"} | json`, `{a="x"} | json`)
	f(`{a="x"} | logfmt`, `{a="x"} | logfmt`)
	f(`{a="x"} | json | status >= 500`, `{a="x"} | json | status >= 500`)
	f(`{a="x"} | logfmt | status = 500`, `{a="x"} | logfmt | status == 500`)
	f(`{a="x"} | logfmt | status == 500`, `{a="x"} | logfmt | status == 500`)
	f(`{a="x"} | logfmt | status != 200`, `{a="x"} | logfmt | status != 200`)
	f(`{a="x"} | logfmt | level = "error"`, `{a="x"} | logfmt | level = "error"`)
	f(`{a="x"} | logfmt | level =~ "err.*"`, `{a="x"} | logfmt | level =~ "err.*"`)
	f(`{a="x"} | logfmt | level !~ "info"`, `{a="x"} | logfmt | level !~ "info"`)
	f(`{a="x"} | logfmt | took > 250ms`, `{a="x"} | logfmt | took > 250ms`)
	f(`{a="x"} | logfmt | delta < -1.5`, `{a="x"} | logfmt | delta < -1.5`)
	f(`{a="x"} | logfmt | a="1", b="2"`, `{a="x"} | logfmt | (a = "1" and b = "2")`)
	f(`{a="x"} | logfmt | a="1" and b="2" or c="3"`, `{a="x"} | logfmt | ((a = "1" and b = "2") or c = "3")`)
	f(`{a="x"} | logfmt | a="1" and (b="2" or c="3")`, `{a="x"} | logfmt | (a = "1" and (b = "2" or c = "3"))`)
	f(`{a="x"} | logfmt | a="1" | b<=3`, `{a="x"} | logfmt | a = "1" | b <= 3`)
	f(`{a="x"} |= "err" | json | json = "x"`, `{a="x"} |= "err" | json | json = "x"`)
	f(`{a="x"} | level = "error"`, `{a="x"} | level = "error"`)
	f(`count_over_time({a="x"}[1m])`, `count_over_time({a="x"} [1m])`)
	f(`count_over_time({log_group=~".+"} |= "FATAL" [1m])`, `count_over_time({log_group=~".+"} |= "FATAL" [1m])`)
	f(`rate({a="x"}[5m])`, `rate({a="x"} [5m])`)
	f(`rate({a="x"}[90s])`, `rate({a="x"} [1m30s])`)
	f(`rate({a="x"}[1h])`, `rate({a="x"} [1h])`)
	f(`rate({a="x"}[1d])`, `rate({a="x"} [24h])`)
	f(`bytes_over_time({a="x"}[10s])`, `bytes_over_time({a="x"} [10s])`)
	f(`bytes_rate({a="x"}[10s])`, `bytes_rate({a="x"} [10s])`)
	f(`sum(rate({a="x"}[5m]))`, `sum (rate({a="x"} [5m]))`)
	f(`sum by (level) (rate({a="x"}[5m]))`, `sum by (level) (rate({a="x"} [5m]))`)
	f(`sum(rate({a="x"}[5m])) by (level, log_group)`, `sum by (level, log_group) (rate({a="x"} [5m]))`)
	f(`count by () (rate({a="x"}[5m]))`, `count by () (rate({a="x"} [5m]))`)
	f(`max by (status) (count_over_time({a="x"} | json [1m]))`, `max by (status) (count_over_time({a="x"} | json [1m]))`)
	f(`min(bytes_over_time({a="x"}[1m]))`, `min (bytes_over_time({a="x"} [1m]))`)
	f(`avg(count_over_time({a="x"}[1m]))`, `avg (count_over_time({a="x"} [1m]))`)
	f(`sum(count by (level) (count_over_time({a="x"}[1m])))`, `sum (count by (level) (count_over_time({a="x"} [1m])))`)
	f(`(sum(rate({a="x"}[1m])))`, `sum (rate({a="x"} [1m]))`)
	f("{a=\"x\"} # a comment\n |= \"y\"", `{a="x"} |= "y"`)
}

func TestParseErrors(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		_, err := Parse(in)
		if err == nil {
			t.Fatalf("Parse(%q): no error, want %q", in, want)
		}
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Fatalf("Parse(%q): %T is not a *ParseError", in, err)
		}
		if err.Error() != want {
			t.Fatalf("Parse(%q)\n got: %s\nwant: %s", in, err, want)
		}
	}
	f(``, `parse error at line 1, col 1: expected a log selector "{" or a metric function (count_over_time, rate, bytes_over_time, bytes_rate, sum, count, max, min, avg)`)
	f(`{}`, `parse error at line 1, col 2: expected a label name`)
	f(`{a="x"`, `parse error at line 1, col 7: expected "}"`)
	f(`{a="x" b="y"}`, `parse error at line 1, col 8: expected "}"`)
	f(`{a}`, `parse error at line 1, col 3: expected a matcher operator (= != =~ !~)`)
	f(`{a=x}`, `parse error at line 1, col 4: expected a string`)
	f(`{a=~"("}`, "parse error at line 1, col 5: invalid regexp: error parsing regexp: missing closing ): `(`")
	f(`{a="x"} |= y`, `parse error at line 1, col 12: expected a string`)
	f(`{a="x"} |~ "[a"`, "parse error at line 1, col 12: invalid regexp: error parsing regexp: missing closing ]: `[a`")
	f(`{a="x"} | `, `parse error at line 1, col 11: expected json, logfmt or a label filter`)
	f(`{a="x"} | json |`, `parse error at line 1, col 17: expected json, logfmt or a label filter`)
	f(`{a="x"} | status`, `parse error at line 1, col 17: expected a comparison operator (= != =~ !~ > >= < <= ==)`)
	f(`{a="x"} | status > "x"`, `parse error at line 1, col 20: expected a number or duration after >`)
	f(`{a="x"} | status =~ 5`, `parse error at line 1, col 21: expected a string after =~`)
	f(`{a="x"} | status = 5x`, `parse error at line 1, col 20: invalid number or duration "5x"`)
	f(`{a="x"} | a="1" and`, `parse error at line 1, col 20: expected a label name`)
	f(`{a="x"} | (a="1"`, `parse error at line 1, col 17: expected ")"`)
	f(`{a="x"} extra`, `parse error at line 1, col 9: expected end of query`)
	f(`count_over_time({a="x"})`, `parse error at line 1, col 24: expected "["`)
	f(`count_over_time({a="x"}[x])`, `parse error at line 1, col 25: expected a range duration such as 5m`)
	f(`count_over_time({a="x"}[5q])`, `parse error at line 1, col 25: expected a range duration such as 5m`)
	f(`count_over_time({a="x"}[5m]`, `parse error at line 1, col 28: expected ")"`)
	f(`count_over_time(a)`, `parse error at line 1, col 17: expected "{"`)
	f(`sum by level (rate({a="x"}[1m]))`, `parse error at line 1, col 8: expected "("`)
	f(`sum by (level (rate({a="x"}[1m]))`, `parse error at line 1, col 15: expected ")"`)
	f(`sum by (1) (rate({a="x"}[1m]))`, `parse error at line 1, col 9: expected a label name`)
	f(`sum by (a) (rate({a="x"}[1m])) by (b)`, `parse error at line 1, col 32: by given twice`)
	f(`sum(rate({a="x"}[1m])`, `parse error at line 1, col 22: expected ")"`)
	f(`foo({a="x"}[1m])`, `parse error at line 1, col 1: expected a log selector "{" or a metric function (count_over_time, rate, bytes_over_time, bytes_rate, sum, count, max, min, avg)`)
	f("{a=\"x\"}\n  |= \"a\" @", `parse error at line 2, col 10: unexpected character '@'`)
	f(`{a="x`, `parse error at line 1, col 4: unterminated string`)
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`count_over_time({log_group=~".+"} |= "FATAL" [1m])`,
		`sum by (level) (rate({service_name="x"} | json | status >= 500 [5m]))`,
		`{a="x", b!~"y.*"} |~ "err" != "health" | logfmt | took > 250ms and (a = "1" or b != "2")`,
		`max(bytes_over_time({a="x"}[1d]))`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := Parse(s)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not a *ParseError: %v", err, err)
			}
			return
		}
		out := q.String()
		q2, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(%q) ok, but its printed form %q fails: %v", s, out, err)
		}
		if q2.String() != out {
			t.Fatalf("printed form not stable: %q -> %q", out, q2.String())
		}
	})
}
