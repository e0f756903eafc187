package config

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Token is one whitespace-separated word of a configuration line.
type Token struct {
	Text string
	Pos  Pos
}

// Line is one option line of a configuration file: the option name and what
// follows it. Comment and blank lines produce no Line.
type Line struct {
	Pos  Pos     // where the option name starts
	Name string  // the option name, e.g. "listener"
	Args []Token // the words after the name, split on spaces and tabs
	// Rest is everything after the name with surrounding blanks removed.
	// Mosquitto takes string values (paths, passwords, timestamp formats)
	// this way, so they may contain spaces.
	Rest Token
}

// Lex splits a configuration file into option lines. name is used in
// positions only.
//
// The syntax is Mosquitto's, slightly more forgiving where that cannot change
// the meaning of a file Mosquitto accepts: a line whose first non-blank
// character is '#' is a comment (Mosquitto requires the '#' in column 1, and
// rejects an indented one as an unknown option); tabs separate words as well
// as spaces; a UTF-8 byte order mark and CRLF line ends are ignored. There
// are no end-of-line comments, as in Mosquitto: a '#' after an option is part
// of its value.
//
// Lines that are not valid UTF-8 or contain control characters are reported
// in the returned Errors and skipped.
func Lex(name string, data []byte) ([]Line, Errors) {
	var (
		lines []Line
		errs  Errors
	)
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	lineNo := 0
	for len(data) > 0 {
		lineNo++
		var raw []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			raw, data = data[:i], data[i+1:]
		} else {
			raw, data = data, nil
		}
		raw = bytes.TrimRight(raw, "\r")
		text := string(raw)
		start := firstNonBlank(text)
		if start == len(text) || text[start] == '#' {
			continue
		}
		col := columns{s: text}
		pos := Pos{File: name, Line: lineNo, Col: col.at(start)}
		if !utf8.ValidString(text) {
			errs = append(errs, &Error{Pos: pos, Msg: "line is not valid UTF-8"})
			continue
		}
		if i := strings.IndexFunc(text, isControl); i >= 0 {
			r, _ := utf8.DecodeRuneInString(text[i:])
			errs = append(errs, &Error{Pos: Pos{File: name, Line: lineNo, Col: col.at(i)},
				Msg: fmt.Sprintf("line contains the control character %U", r)})
			continue
		}
		ln := Line{Pos: pos}
		i := start
		for i < len(text) {
			j := i
			for j < len(text) && !isBlank(text[j]) {
				j++
			}
			tok := Token{Text: text[i:j], Pos: Pos{File: name, Line: lineNo, Col: col.at(i)}}
			if ln.Name == "" {
				ln.Name = tok.Text
				r := j + firstNonBlank(text[j:])
				end := len(strings.TrimRight(text, " \t"))
				ln.Rest = Token{Pos: Pos{File: name, Line: lineNo, Col: col.at(r)}}
				if r < end {
					ln.Rest.Text = text[r:end]
				}
			} else {
				ln.Args = append(ln.Args, tok)
			}
			i = j + firstNonBlank(text[j:])
		}
		lines = append(lines, ln)
	}
	return lines, errs
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' }

// isControl reports characters that have no business in a configuration
// line; a NUL would silently truncate the line in Mosquitto.
func isControl(r rune) bool {
	return r != '\t' && (r < 0x20 || r == 0x7f)
}

func firstNonBlank(s string) int {
	i := 0
	for i < len(s) && isBlank(s[i]) {
		i++
	}
	return i
}

// columns converts byte offsets of one line into 1-based columns counted
// in characters, which is what an editor shows. Offsets must not decrease,
// so that a line of many words costs linear time.
type columns struct {
	s        string
	off, col int
}

func (c *columns) at(off int) int {
	if off < c.off {
		c.off, c.col = 0, 0
	}
	c.col += utf8.RuneCountInString(c.s[c.off:off])
	c.off = off
	return c.col + 1
}
