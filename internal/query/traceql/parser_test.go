package traceql

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
		// The printed form parses back to itself.
		q2, err := Parse(want)
		if err != nil || q2.String() != want {
			t.Fatalf("round trip of %q: %v %v", want, q2, err)
		}
	}
	f(`{}`, `{}`)
	f(`{ }`, `{}`)
	f(`{ status = error }`, `{ status = error }`)
	f(`{status=ok}`, `{ status = ok }`)
	f(`{ status != unset }`, `{ status != unset }`)
	f(`{ status = "error" }`, `{ status = error }`)
	f(`{ kind = server }`, `{ kind = server }`)
	f(`{ kind != client }`, `{ kind != client }`)
	f(`{ name = "GET /tickets" }`, `{ name = "GET /tickets" }`)
	f(`{ name =~ "GET .*" }`, `{ name =~ "GET .*" }`)
	f(`{ name !~ "GET .*" }`, `{ name !~ "GET .*" }`)
	f(`{ statusMessage =~ ".*timeout.*" }`, `{ statusMessage =~ ".*timeout.*" }`)
	f(`{ duration > 1s }`, `{ duration > 1s }`)
	f(`{ duration >= 250ms }`, `{ duration >= 250ms }`)
	f(`{ duration < 1.5s }`, `{ duration < 1.5s }`)
	f(`{ duration <= 100us }`, `{ duration <= 100µs }`)
	f(`{ duration <= 100µs }`, `{ duration <= 100µs }`)
	f(`{ duration > 1m30s }`, `{ duration > 1m30s }`)
	f(`{ duration > 0 }`, `{ duration > 0s }`)
	f(`{ traceDuration > 2s }`, `{ traceDuration > 2s }`)
	f(`{ rootName = "POST /orders" }`, `{ rootName = "POST /orders" }`)
	f(`{ rootServiceName = "tickets-api" }`, `{ rootServiceName = "tickets-api" }`)
	f(`{ resource.service.name = "tickets-server" }`, `{ resource.service.name = "tickets-server" }`)
	f(`{ resource.cloud.availability_zone =~ "us-east-1[ab]" }`, `{ resource.cloud.availability_zone =~ "us-east-1[ab]" }`)
	f(`{ span.http.response.status_code >= 500 }`, `{ span.http.response.status_code >= 500 }`)
	f(`{ .http.route = "/tickets/{id}" }`, `{ .http.route = "/tickets/{id}" }`)
	f(`{ .retries = -3 }`, `{ .retries = -3 }`)
	f(`{ .ratio > 0.25 }`, `{ .ratio > 0.25 }`)
	f(`{ .ratio > -0.5 }`, `{ .ratio > -0.5 }`)
	f(`{ .cached = true }`, `{ .cached = true }`)
	f(`{ .cached != false }`, `{ .cached != false }`)
	f(`{ .wait = 30s }`, `{ .wait = 30s }`)
	f(`{ .foo != nil }`, `{ .foo != nil }`)
	f(`{ .foo = nil }`, `{ .foo = nil }`)
	f(`{ span."name with space" = "x" }`, `{ span."name with space" = "x" }`)
	f("{ .a = `raw\\n` }", `{ .a = "raw\\n" }`)
	f(`{ .a = "esc\"aped" }`, `{ .a = "esc\"aped" }`)
	f(`{ .a = 1 && .b = 2 }`, `{ (.a = 1 && .b = 2) }`)
	f(`{ .a = 1 || .b = 2 && .c = 3 }`, `{ (.a = 1 || (.b = 2 && .c = 3)) }`)
	f(`{ (.a = 1 || .b = 2) && .c = 3 }`, `{ ((.a = 1 || .b = 2) && .c = 3) }`)
	f(`{ !(.a = 1) }`, `{ !.a = 1 }`)
	f(`{ !(.a = 1 && .b = 2) }`, `{ !(.a = 1 && .b = 2) }`)
	f(`{ !!(status = error) }`, `{ !!status = error }`)
	f(`{ .a = 1 } && { .b = 2 }`, `({ .a = 1 } && { .b = 2 })`)
	f(`{ .a = 1 } || { .b = 2 }`, `({ .a = 1 } || { .b = 2 })`)
	f(`{ .a = 1 } > { .b = 2 }`, `({ .a = 1 } > { .b = 2 })`)
	f(`{ .a = 1 } >> { .b = 2 }`, `({ .a = 1 } >> { .b = 2 })`)
	f(`{ .a = 1 } >> { .b = 2 } > { .c = 3 }`, `(({ .a = 1 } >> { .b = 2 }) > { .c = 3 })`)
	f(`{ .a = 1 } || { .b = 2 } && { .c = 3 }`, `({ .a = 1 } || ({ .b = 2 } && { .c = 3 }))`)
	f(`({ .a = 1 } || { .b = 2 }) && { .c = 3 }`, `(({ .a = 1 } || { .b = 2 }) && { .c = 3 })`)
	f(`{ .a = 1 } && { .b = 2 } > { .c = 3 }`, `({ .a = 1 } && ({ .b = 2 } > { .c = 3 }))`)
	f(`{ status = error } | rate()`, `{ status = error } | rate()`)
	f(`{ status = error } | rate() by (resource.cloud.availability_zone)`, `{ status = error } | rate() by (resource.cloud.availability_zone)`)
	f(`{} | count_over_time() by (resource.service.name, name)`, `{} | count_over_time() by (resource.service.name, name)`)
	f(`{} | quantile_over_time(duration, 0.5, 0.95, 0.99)`, `{} | quantile_over_time(duration, 0.5, 0.95, 0.99)`)
	f(`{} | quantile_over_time(duration, 0.5) by (.x)`, `{} | quantile_over_time(duration, 0.5) by (.x)`)
	f(`{ kind = server } | histogram_over_time(duration) by (span.http.route)`, `{ kind = server } | histogram_over_time(duration) by (span.http.route)`)
	f(`{ .a = 1 } && { .b = 2 } | rate() by (rootServiceName)`, `({ .a = 1 } && { .b = 2 }) | rate() by (rootServiceName)`)
	f("{\n  status = error\n}", `{ status = error }`)
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
			t.Fatalf("Parse(%q): error %T is not a *ParseError", in, err)
		}
		if err.Error() != want {
			t.Fatalf("Parse(%q)\n got: %s\nwant: %s", in, err, want)
		}
	}
	f(``, `parse error at line 1, col 1: expected "{" or "("`)
	f(`{ status = error `, `parse error at line 1, col 18: expected "}"`)
	f(`{ status = error | rate()`, `parse error at line 1, col 18: expected "}"`)
	f(`{ status = boom }`, `parse error at line 1, col 12: expected a value (string, number, duration, boolean, status or kind)`)
	f(`{ status = server }`, `parse error at line 1, col 12: expected a status (ok, error, unset) to compare with status`)
	f(`{ status > error }`, `parse error at line 1, col 10: status compares only with = or !=`)
	f(`{ kind = error }`, `parse error at line 1, col 10: expected a span kind (server, client, producer, consumer, internal, unspecified) to compare with kind`)
	f(`{ duration > "x" }`, `parse error at line 1, col 14: expected a duration (e.g. 250ms) to compare with duration`)
	f(`{ duration > 10 }`, `parse error at line 1, col 14: expected a duration (e.g. 250ms) to compare with duration`)
	f(`{ .a = error }`, `parse error at line 1, col 8: expected a string, number, boolean or duration`)
	f(`{ .a =~ 1 }`, `parse error at line 1, col 9: expected a string after =~`)
	f(`{ .a }`, `parse error at line 1, col 6: expected a comparison operator (= != > >= < <= =~ !~)`)
	f(`{ foo = 1 }`, `parse error at line 1, col 3: unknown intrinsic "foo": want name, status, statusMessage, kind, duration, rootName, rootServiceName, traceDuration, or an attribute (resource.x, span.x, .x)`)
	f(`{ resource. = 1 }`, `parse error at line 1, col 3: attribute name missing after "resource."`)
	f(`{ .a = "x }`, `parse error at line 1, col 8: unterminated string`)
	f(`{ .a = 1x }`, `parse error at line 1, col 8: invalid number or duration "1x"`)
	f(`{ .a = 1 } {`, `parse error at line 1, col 12: expected "&&", "||", ">", ">>", "|" or end of query`)
	f(`{ .a = 1 } | foo()`, `parse error at line 1, col 14: expected a metrics function (rate, count_over_time, quantile_over_time, histogram_over_time)`)
	f(`{ .a = 1 } | rate(`, `parse error at line 1, col 19: expected ")"`)
	f(`{} | quantile_over_time(duration)`, `parse error at line 1, col 33: expected "," and at least one quantile`)
	f(`{} | quantile_over_time(duration, 2)`, `parse error at line 1, col 35: expected a quantile between 0 and 1`)
	f(`{} | quantile_over_time(.x, 0.5)`, `parse error at line 1, col 25: expected duration: quantile_over_time measures span duration only`)
	f(`{} | rate() by ()`, `parse error at line 1, col 17: expected an attribute or intrinsic`)
	f(`{} | rate() by (.a`, `parse error at line 1, col 19: expected ")"`)
	f(`{} | rate() extra`, `parse error at line 1, col 13: expected end of query`)
	f(`{ .a = 1 } >`, `parse error at line 1, col 13: expected "{" or "("`)
	f(`{ .a = 1 # }`, `parse error at line 1, col 10: unexpected character '#'`)
	f("{\n  .a = 1\n  .b = 2 }", `parse error at line 3, col 3: expected "}"`)
	f(`{ .a = nil && .b > nil }`, `parse error at line 1, col 18: nil compares only with = or !=`)
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{ status = error } | rate() by (resource.cloud.availability_zone)`,
		`{ .a = 1 } >> { .b = "x" } && ({ duration > 1s } || { kind = server })`,
		`{} | quantile_over_time(duration, 0.5, 0.99)`,
		`{ !(.a =~ "x.*" && name != "y") }`,
		`{ .a = -1.5e3 }`,
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
		// What parses prints to something that parses to the same thing.
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
