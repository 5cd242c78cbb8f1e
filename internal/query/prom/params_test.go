package prom

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
)

type storageAppender = storage.Appender

func TestParseTime(t *testing.T) {
	f := func(in string, want time.Time, wantErr bool) {
		t.Helper()
		got, err := parseTime(in)
		if (err != nil) != wantErr || (!wantErr && !got.Equal(want)) {
			t.Errorf("parseTime(%q) = %v, %v; want %v, err %v", in, got, err, want, wantErr)
		}
	}
	f("1700000000", time.Unix(1700000000, 0), false)
	f("1700000000.123", time.Unix(1700000000, 123e6), false)
	f("1700000000.1234", time.Unix(1700000000, 123e6), false) // millisecond precision
	f("2023-11-14T22:13:20Z", time.Unix(1700000000, 0), false)
	f("2023-11-14T22:13:20.5+01:00", time.Unix(1699996400, 5e8), false)
	f(minTimeFormatted, minTime, false)
	f(maxTimeFormatted, maxTime, false)
	f("", time.Time{}, true)
	f("now", time.Time{}, true)
}

func TestParseDuration(t *testing.T) {
	f := func(in string, want time.Duration, wantErr bool) {
		t.Helper()
		got, err := parseDuration(in)
		if (err != nil) != wantErr || got != want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v, err %v", in, got, err, want, wantErr)
		}
	}
	f("15", 15*time.Second, false)
	f("0.5", 500*time.Millisecond, false)
	f("5m", 5*time.Minute, false)
	f("1h30m", 90*time.Minute, false)
	f("1e30", 0, true)
	f("NaN", 0, true)
	f("5 minutes", 0, true)
}

func TestAppendFloatAndTimestamp(t *testing.T) {
	f := func(v float64, want string) {
		t.Helper()
		if got := string(appendFloat(nil, v)); got != want {
			t.Errorf("appendFloat(%v) = %s, want %s", v, got, want)
		}
	}
	f(1, `"1"`)
	f(0.25, `"0.25"`)
	f(1e-7, `"1e-07"`)
	f(1e21, `"1e+21"`)
	f(math.NaN(), `"NaN"`)
	f(math.Inf(1), `"+Inf"`)
	f(math.Inf(-1), `"-Inf"`)
	g := func(ms int64, want string) {
		t.Helper()
		if got := string(appendTimestamp(nil, ms)); got != want {
			t.Errorf("appendTimestamp(%d) = %s, want %s", ms, got, want)
		}
	}
	// Prometheus writes three decimals whenever there is a fraction.
	g(1500, "1.500")
	g(1005, "1.005")
	g(1050, "1.050")
	g(2000, "2")
	g(-1500, "-1.500")
}

// FuzzAppendJSONString: label values are arbitrary bytes from senders; our
// encoder must always produce valid JSON that decodes as encoding/json
// would decode its own encoding.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", `q"uote\`, "line\nbreak\t", "\x00\x1f", "é✓", "\xff\xfe", "\u2028<>&"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := appendJSONString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("invalid JSON %q for %q: %v", b, s, err)
		}
		std, _ := json.Marshal(s)
		var want string
		_ = json.Unmarshal(std, &want)
		if got != want {
			t.Fatalf("decoded %q, encoding/json gives %q", got, want)
		}
	})
}

// TestHistogramJSON: native histograms are written as Prometheus writes
// them (promql.HPoint's own MarshalJSON is the reference).
func TestHistogramJSON(t *testing.T) {
	h := &histogram.FloatHistogram{
		Schema:          1,
		Count:           12,
		Sum:             34.5,
		ZeroThreshold:   0.001,
		ZeroCount:       2,
		PositiveSpans:   []histogram.Span{{Offset: 0, Length: 2}, {Offset: 1, Length: 1}},
		PositiveBuckets: []float64{3, 0, 4},
		NegativeSpans:   []histogram.Span{{Offset: 0, Length: 1}},
		NegativeBuckets: []float64{3},
	}
	want, err := json.Marshal(promql.HPoint{T: 1500, H: h})
	if err != nil {
		t.Fatal(err)
	}
	got := appendHPoint(nil, 1500, h)
	var w, g any
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%v: %s", err, got)
	}
	if d := diffData(w, g); d != "" {
		t.Errorf("histogram JSON differs: %s\nwant %s\ngot  %s", d, want, got)
	}
}
