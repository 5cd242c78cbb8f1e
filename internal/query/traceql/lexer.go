package traceql

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ParseError is a syntax error with its position (1-based line and column,
// columns counted in characters).
type ParseError struct {
	Line, Col int
	Msg       string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("parse error at line %d, col %d: %s", e.Line, e.Col, e.Msg)
}

func errorAt(src string, off int, format string, args ...any) *ParseError {
	if off > len(src) {
		off = len(src)
	}
	line, col := 1, 1
	for _, r := range src[:off] {
		if r == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return &ParseError{Line: line, Col: col, Msg: fmt.Sprintf(format, args...)}
}

type tokKind uint8

const (
	tEOF    tokKind = iota
	tPunct          // operators and brackets; text holds the symbol
	tIdent          // identifiers and attribute references
	tString         // text holds the unquoted value
	tNumber         // text holds the literal as written
)

type token struct {
	kind tokKind
	text string
	off  int
}

func (t token) String() string {
	switch t.kind {
	case tEOF:
		return "end of query"
	case tString:
		return strconv.Quote(t.text)
	}
	return strconv.Quote(t.text)
}

// punct lists operators longest first so that ">>" wins over ">".
var punct = []string{">>", ">=", "<=", "!=", "=~", "!~", "&&", "||", "{", "}", "(", ")", ",", "|", "!", ">", "<", "=", "-"}

func isIdentStart(c byte) bool {
	return c == '_' || c == '.' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isIdentChar(c byte) bool {
	return isIdentStart(c) || (c >= '0' && c <= '9') || c == '/' || c == ':' || c == '-'
}

func lex(src string) ([]token, error) {
	var toks []token
	i := 0
	for i < len(src) {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
			continue
		case c == '"' || c == '`':
			s, n, err := lexString(src, i)
			if err != nil {
				return nil, err
			}
			toks = append(toks, token{tString, s, i})
			i += n
			continue
		case c >= '0' && c <= '9':
			j := i
			for j < len(src) {
				c := src[j]
				exp := (c == '+' || c == '-') && (src[j-1] == 'e' || src[j-1] == 'E')
				if !exp && !(isIdentChar(c) && c != '/' && c != ':' && c != '-') {
					break
				}
				j++
			}
			// µs: the micro sign is two bytes.
			for strings.HasPrefix(src[j:], "µ") {
				j += len("µ")
				for j < len(src) && src[j] >= 'a' && src[j] <= 'z' {
					j++
				}
			}
			toks = append(toks, token{tNumber, src[i:j], i})
			i = j
			continue
		case isIdentStart(c):
			j := i + 1
			for j < len(src) && isIdentChar(src[j]) {
				j++
			}
			// Quoted attribute names: span."name with spaces".
			if src[j-1] == '.' && j < len(src) && src[j] == '"' {
				s, n, err := lexString(src, j)
				if err != nil {
					return nil, err
				}
				toks = append(toks, token{tIdent, src[i:j] + s, i})
				i = j + n
				continue
			}
			toks = append(toks, token{tIdent, src[i:j], i})
			i = j
			continue
		}
		found := false
		for _, p := range punct {
			if strings.HasPrefix(src[i:], p) {
				toks = append(toks, token{tPunct, p, i})
				i += len(p)
				found = true
				break
			}
		}
		if !found {
			r, _ := utf8.DecodeRuneInString(src[i:])
			return nil, errorAt(src, i, "unexpected character %q", r)
		}
	}
	toks = append(toks, token{tEOF, "", len(src)})
	return toks, nil
}

// lexString reads a double-quoted (Go escapes) or backquoted (raw) string at
// src[i] and returns its value and length in bytes.
func lexString(src string, i int) (string, int, error) {
	q := src[i]
	j := i + 1
	for j < len(src) {
		if src[j] == '\\' && q == '"' {
			j += 2
			continue
		}
		if src[j] == q {
			s, err := strconv.Unquote(src[i : j+1])
			if err != nil {
				return "", 0, errorAt(src, i, "invalid string literal: %v", err)
			}
			return s, j + 1 - i, nil
		}
		if src[j] == '\n' && q == '"' {
			break
		}
		j++
	}
	return "", 0, errorAt(src, i, "unterminated string")
}

// parseNumber classifies a numeric token: an integer, a float or a duration.
func parseNumber(s string) (i int64, f float64, d time.Duration, kind byte, ok bool) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, 0, 0, 'i', true
	}
	if x, err := strconv.ParseFloat(s, 64); err == nil && !strings.ContainsAny(s, "xXpP_") {
		return 0, x, 0, 'f', true
	}
	if x, err := time.ParseDuration(s); err == nil {
		return 0, 0, x, 'd', true
	}
	return 0, 0, 0, 0, false
}
