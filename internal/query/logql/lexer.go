package logql

import (
	"fmt"
	"strconv"
	"strings"
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
	off = min(off, len(src))
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
	tEOF tokKind = iota
	tPunct
	tIdent
	tString
	tNumber // digits, possibly with a unit: 5m, 1.5, 250ms
)

type token struct {
	kind tokKind
	text string
	off  int
}

var punct = []string{"|=", "|~", "!=", "!~", "=~", "==", ">=", "<=", "{", "}", "(", ")", "[", "]", ",", "|", "=", ">", "<", "-"}

func isIdentStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isIdentChar(c byte) bool { return isIdentStart(c) || (c >= '0' && c <= '9') }

func lex(src string) ([]token, error) {
	var toks []token
	i := 0
	for i < len(src) {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
			continue
		case c == '#': // a comment runs to the end of the line, as in PromQL
			for i < len(src) && src[i] != '\n' {
				i++
			}
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
				if !exp && !isIdentChar(c) && c != '.' {
					break
				}
				j++
			}
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
	return append(toks, token{tEOF, "", len(src)}), nil
}

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
