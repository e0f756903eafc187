package config

import (
	"fmt"
	"strings"
)

// Pos is a place in a configuration file. Line and Col count from 1; a zero
// Line means the position is unknown (for example a value that comes from
// [Default]).
type Pos struct {
	File string
	Line int
	Col  int
}

// String formats the position as "file:line", the form people and editors
// expect in error messages.
func (p Pos) String() string {
	if p.Line == 0 {
		if p.File == "" {
			return "(default)"
		}
		return p.File
	}
	return fmt.Sprintf("%s:%d", p.File, p.Line)
}

// IsValid reports whether p points at a line of a file.
func (p Pos) IsValid() bool { return p.Line > 0 }

// MarshalText renders the position as "file:line:col", so that golden files
// and JSON dumps stay short and readable.
func (p Pos) MarshalText() ([]byte, error) {
	if !p.IsValid() {
		return []byte(p.String()), nil
	}
	return fmt.Appendf(nil, "%s:%d:%d", p.File, p.Line, p.Col), nil
}

// Error is one problem in a configuration: where it is, which option, and
// what is wrong in words, quoting the offending token.
type Error struct {
	Pos    Pos
	Option string // the option name; empty when the line has none
	Msg    string
	Err    error // the underlying error, if any (e.g. reading an include_dir)
}

// Error formats the problem as "file:line: option: message".
func (e *Error) Error() string {
	if e.Option == "" {
		return fmt.Sprintf("%s: %s", e.Pos, e.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", e.Pos, e.Option, e.Msg)
}

// Unwrap returns the underlying error, so that errors.Is works on, for
// example, fs.ErrNotExist.
func (e *Error) Unwrap() error { return e.Err }

// Errors is every problem found in a configuration, in file order. The
// parser never stops at the first one: a user fixing a file sees them all.
type Errors []*Error

// Error prints one problem per line.
func (es Errors) Error() string {
	var b strings.Builder
	for i, e := range es {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap exposes the individual errors to errors.Is and errors.As.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// Warning is an option that mamori accepts but cannot honour exactly as
// Mosquitto does, or a line that is accepted but probably not what the user
// meant. The broker logs each one once at start.
type Warning struct {
	Pos    Pos
	Option string
	Msg    string
}

// String formats the warning like an [Error]: "file:line: option: message".
func (w Warning) String() string {
	return (&Error{Pos: w.Pos, Option: w.Option, Msg: w.Msg}).Error()
}
