// Package topic holds MQTT topic name and topic filter validation, wildcard
// matching, the subscription tree (Tree) and the retained-message index
// (Retained).
//
// It does no I/O and imports nothing of mamori's, so the broker can call it on
// the publish hot path: matching a name against a Tree or a single filter does
// not allocate.
//
// Terms follow MQTT 5.0 §4.7: a topic name (in PUBLISH) never contains
// wildcards; a topic filter (in SUBSCRIBE and UNSUBSCRIBE) may contain '+'
// (one level) and '#' (any number of levels, including none). Levels are
// separated by '/', and empty levels are significant: "a//b" has three levels,
// "/a" has two, the first one empty [MQTT-4.7.1-1].
package topic

import (
	"strings"
	"unicode/utf8"
)

// Error is a validation failure. The values are constants so callers can
// compare with == or errors.Is, and map them to reason codes (0x90 Topic Name
// invalid, 0x8F Topic Filter invalid, 0x9E Shared Subscriptions not supported
// and so on) without matching text.
type Error string

// Error implements the error interface.
func (e Error) Error() string { return string(e) }

// Validation errors returned by ValidName, ValidFilter and ParseShared.
const (
	// ErrEmpty: topic names and filters are at least one character long
	// [MQTT-4.7.3-1].
	ErrEmpty Error = "topic: empty topic"
	// ErrTooLong: topic names and filters encode to at most 65535 bytes
	// [MQTT-4.7.3-3].
	ErrTooLong Error = "topic: longer than 65535 bytes"
	// ErrInvalidUTF8: topics are well-formed UTF-8 without surrogates
	// [MQTT-1.5.4-1] (3.1.1: [MQTT-1.5.3-1]).
	ErrInvalidUTF8 Error = "topic: invalid UTF-8"
	// ErrNull: topics never contain U+0000 [MQTT-1.5.4-2], [MQTT-4.7.3-2].
	ErrNull Error = "topic: contains U+0000"
	// ErrWildcardInName: '+' and '#' are not allowed in a topic name
	// [MQTT-3.3.2-2], [MQTT-4.7.0-1] (3.1.1: [MQTT-4.7.1-1]).
	ErrWildcardInName Error = "topic: wildcard in topic name"
	// ErrMultiLevelWildcard: '#' stands alone in the last level of a filter
	// [MQTT-4.7.1-1] (3.1.1: [MQTT-4.7.1-2]).
	ErrMultiLevelWildcard Error = "topic: '#' not alone in the last level"
	// ErrSingleLevelWildcard: '+' occupies a whole level [MQTT-4.7.1-2]
	// (3.1.1: [MQTT-4.7.1-3]).
	ErrSingleLevelWildcard Error = "topic: '+' not alone in its level"
	// ErrShareName: the ShareName of "$share/{ShareName}/{filter}" is at least
	// one character [MQTT-4.8.2-1] and contains no '/', '+' or '#'
	// [MQTT-4.8.2-2].
	ErrShareName Error = "topic: invalid shared subscription group name"
	// ErrShareFilter: "$share/{ShareName}/" is followed by a topic filter
	// [MQTT-4.8.2-2].
	ErrShareFilter Error = "topic: shared subscription without a topic filter"
)

// MaxLen is the longest topic name or filter in bytes: the length prefix of
// an MQTT UTF-8 string is 16 bits [MQTT-1.5.4-1].
const MaxLen = 65535

// SharePrefix starts a shared subscription filter, "$share/{group}/{filter}"
// (MQTT 5.0 §4.8.2; mosquitto accepts it from 3.1.1 clients too).
const SharePrefix = "$share/"

// checkString applies the rules every MQTT UTF-8 string follows: length,
// well-formedness and no U+0000. Whole-string library scans (utf8.ValidString
// checks ASCII eight bytes at a time, IndexByte is vectorised) beat one
// hand-written byte loop for topics of typical length.
func checkString(s string) error {
	if len(s) == 0 {
		return ErrEmpty
	}
	if len(s) > MaxLen {
		return ErrTooLong
	}
	// utf8.ValidString rejects surrogate halves (U+D800..U+DFFF) and
	// overlong forms, which MQTT forbids as well.
	if !utf8.ValidString(s) {
		return ErrInvalidUTF8
	}
	if strings.IndexByte(s, 0) >= 0 {
		return ErrNull
	}
	return nil
}

// ValidName reports whether name may be used as the topic name of a PUBLISH
// (or a will topic): non-empty [MQTT-4.7.3-1], at most 65535 bytes,
// well-formed UTF-8 without U+0000 [MQTT-4.7.3-2], and no '+' or '#'
// [MQTT-3.3.2-2]. It returns nil or one of the Err constants.
//
// Names starting with '$' are valid; the broker decides whether clients may
// publish to them (MQTT 5.0 §4.7.2 only says the server SHOULD prevent it).
func ValidName(name string) error {
	if err := checkString(name); err != nil {
		return err
	}
	if strings.IndexByte(name, '+') >= 0 || strings.IndexByte(name, '#') >= 0 {
		return ErrWildcardInName
	}
	return nil
}

// ValidFilter reports whether filter is a well-formed topic filter: the
// string rules of ValidName, '#' only as the whole last level
// [MQTT-4.7.1-1], '+' only as a whole level [MQTT-4.7.1-2]. It returns nil
// or one of the Err constants.
//
// ValidFilter does not treat "$share/..." specially: use ParseShared on
// filters from SUBSCRIBE, which also validates the filter.
func ValidFilter(filter string) error {
	if err := checkString(filter); err != nil {
		return err
	}
	return checkWildcards(filter)
}

// checkWildcards checks the placement of '+' and '#' in filter.
func checkWildcards(filter string) error {
	for i := 0; i < len(filter); i++ {
		switch filter[i] {
		case '#':
			// '#' is the last character and is either the whole filter or
			// follows a separator.
			if i != len(filter)-1 || (i > 0 && filter[i-1] != '/') {
				return ErrMultiLevelWildcard
			}
		case '+':
			if (i > 0 && filter[i-1] != '/') || (i < len(filter)-1 && filter[i+1] != '/') {
				return ErrSingleLevelWildcard
			}
		}
	}
	return nil
}

// ParseShared splits a filter from SUBSCRIBE or UNSUBSCRIBE. For
// "$share/{group}/{filter}" it returns the group, the inner filter and
// shared=true; for any other filter it returns an empty group, the filter
// unchanged and shared=false. In both cases the (inner) filter is validated
// as by ValidFilter, so a nil error means the subscription is well formed.
//
// The group name is at least one character [MQTT-4.8.2-1], contains no '/',
// '+' or '#' and is followed by '/' and a topic filter [MQTT-4.8.2-2]. "$share" without a following '/' is an ordinary filter.
func ParseShared(filter string) (group, inner string, shared bool, err error) {
	if !strings.HasPrefix(filter, SharePrefix) {
		return "", filter, false, ValidFilter(filter)
	}
	// Check the whole string first so that length, UTF-8 and U+0000 errors
	// take precedence over the share syntax.
	if err := checkString(filter); err != nil {
		return "", "", true, err
	}
	rest := filter[len(SharePrefix):]
	slash := strings.IndexByte(rest, '/')
	if slash < 0 {
		if rest == "" || strings.ContainsAny(rest, "+#") {
			return "", "", true, ErrShareName
		}
		return "", "", true, ErrShareFilter
	}
	group, inner = rest[:slash], rest[slash+1:]
	if group == "" || strings.ContainsAny(group, "+#") {
		return "", "", true, ErrShareName
	}
	if inner == "" {
		return group, "", true, ErrShareFilter
	}
	return group, inner, true, checkWildcards(inner)
}

// nextLevel returns the level of s that starts at pos and the start of the
// level after it. A returned next greater than len(s) means there are no
// more levels; callers start with pos 0 and stop when pos > len(s). Scanning
// this way distinguishes "a" (one level) from "a/" (two, the second empty)
// without allocating. A plain loop beats strings.IndexByte here: levels are
// short, and the loop inlines where the assembly routine is a call.
func nextLevel(s string, pos int) (level string, next int) {
	for i := pos; i < len(s); i++ {
		if s[i] == '/' {
			return s[pos:i], i + 1
		}
	}
	return s[pos:], len(s) + 1
}

// Match reports whether the topic filter matches the topic name. Both are
// assumed valid (ValidFilter, ValidName); Match does not allocate.
//
// '+' matches exactly one level, which may be empty; '#' matches any number
// of levels including none, so "sport/#" matches "sport" [MQTT-4.7.1-1]
// (3.1.1: [MQTT-4.7.1-2]). A name starting with '$' is not matched by a
// filter whose first level is a wildcard [MQTT-4.7.2-1]: "#" and "+/x" do not
// match "$SYS/x", "$SYS/#" does. A "$share/..." filter is compared literally;
// strip it with ParseShared first. Matching compares bytes: no case folding
// or Unicode normalization [MQTT-4.7.3-4].
func Match(filter, name string) bool {
	if len(name) > 0 && name[0] == '$' && len(filter) > 0 && (filter[0] == '+' || filter[0] == '#') {
		return false
	}
	// Walk both strings byte by byte; in a valid filter a wildcard is always
	// a whole level, so on reaching one, j is at the start of a name level.
	i, j := 0, 0
	for i < len(filter) {
		switch c := filter[i]; c {
		case '+':
			for j < len(name) && name[j] != '/' {
				j++
			}
			i++
		case '#':
			return true
		default:
			if j < len(name) && name[j] == c {
				i++
				j++
				continue
			}
			// The one mismatch that still matches: the name ended where the
			// filter continues with "/#", the parent level of '#'.
			return j == len(name) && c == '/' && filter[i+1:] == "#"
		}
	}
	return j == len(name)
}
