package demo

import (
	"strings"
	"testing"
)

// FuzzParsePGLine: the log file is written by another program; whatever it
// holds must not crash the tailer, and a parsed line keeps its text.
func FuzzParsePGLine(f *testing.F) {
	f.Add("2026-11-28 15:01:02 UTC:127.0.0.1(51234):tickets@ticketsdb:[12345]:FATAL:  sorry, too many clients already")
	f.Add("2026-11-28 15:01:02 UTC::@:[400]:LOG:  database system is ready to accept connections")
	f.Add("\tDETAIL: continuation")
	f.Add("")
	f.Fuzz(func(t *testing.T, line string) {
		pl, ok := parsePGLine(line)
		if !ok {
			return
		}
		if pl.level == "" || pl.t.IsZero() {
			t.Fatalf("parsed %q without level or time: %+v", line, pl)
		}
		if !strings.Contains(line, "remaining connection slots") && pl.text != line {
			t.Fatalf("text changed: %q -> %q", line, pl.text)
		}
	})
}
