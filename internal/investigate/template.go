package investigate

import (
	"regexp"
	"strings"
)

var (
	reTS   = regexp.MustCompile(`\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}([.,]\d+)?(Z|[+-]\d{2}:?\d{2}| ?UTC)?`)
	reUUID = regexp.MustCompile(`[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`)
	reIP   = regexp.MustCompile(`\b\d{1,3}(\.\d{1,3}){3}(:\d+)?\b`)
	reHex0 = regexp.MustCompile(`\b0x[0-9a-fA-F]+\b`)
	reHex  = regexp.MustCompile(`\b[0-9a-fA-F]{6,}\b`)
	reNum  = regexp.MustCompile(`\d+(\.\d+)?`)
)

// Template masks the variable parts of a message (UUIDs, IP addresses, hex
// ids, numbers) so that "timeout after 30012ms on 10.0.0.7" and "timeout
// after 29987ms on 10.0.0.9" fall into one template. The specific shapes go
// before plain numbers.
func Template(msg string) string {
	msg = strings.TrimSpace(msg)
	msg = reTS.ReplaceAllString(msg, "<ts>")
	msg = reUUID.ReplaceAllString(msg, "<uuid>")
	msg = reIP.ReplaceAllString(msg, "<ip>")
	msg = reHex0.ReplaceAllString(msg, "<hex>")
	// A hex run counts as an id only when it mixes digits and letters;
	// "deadline" or "accepted" are words.
	msg = reHex.ReplaceAllStringFunc(msg, func(s string) string {
		if strings.ContainsAny(s, "0123456789") && strings.ContainsAny(s, "abcdefABCDEF") {
			return "<hex>"
		}
		return s
	})
	return reNum.ReplaceAllString(msg, "<n>")
}

var reSevMarker = regexp.MustCompile(`(?i)\b(PANIC|FATAL|ERROR|WARNING|WARN|LOG|INFO|DEBUG)\b:?\s+`)

// messagePart drops a log line's prefix up to its severity marker
// ("<ts>:<ip>(<n>):app@db:[<n>]:FATAL:  sorry" -> "sorry"), for titles.
func messagePart(s string) string {
	if loc := reSevMarker.FindStringIndex(s); loc != nil && loc[1] < len(s) {
		return strings.TrimSpace(s[loc[1]:])
	}
	return s
}
