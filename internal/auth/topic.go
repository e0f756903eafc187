package auth

import (
	"errors"
	"strings"
	"unicode/utf8"
)

// This file holds the MQTT topic-filter logic the ACL needs. It is kept
// here, small and allocation-free on the per-message path, rather than
// shared with the broker's subscription tree so the two can evolve apart.

// validFilter reports why f is not a valid MQTT topic filter
// ([MQTT-4.7.1-1], [MQTT-4.7.1-2], [MQTT-4.7.3-1], [MQTT-4.7.3-2]).
func validFilter(f string) error {
	switch {
	case f == "":
		return errors.New("empty topic")
	case len(f) > 65535:
		return errors.New("topic longer than 65535 bytes")
	case !utf8.ValidString(f):
		return errors.New("topic is not valid UTF-8")
	case strings.IndexByte(f, 0) >= 0:
		return errors.New("topic contains a NUL character")
	}
	for rest, more := f, true; more; {
		var lv string
		lv, rest, more = strings.Cut(rest, "/")
		if strings.ContainsAny(lv, "+#") && len(lv) > 1 {
			return errors.New("'+' and '#' must occupy a whole topic level")
		}
		if lv == "#" && more {
			return errors.New("'#' must be the last topic level")
		}
	}
	return nil
}

// topicMatch reports whether the topic name matches filter, with MQTT's
// rule that a topic beginning with '$' is not matched by a filter beginning
// with a wildcard ([MQTT-4.7.2-1]). "a/#" also matches "a" ([MQTT-4.7.1-2]).
func topicMatch(filter, topic string) bool {
	if filter == "" || topic == "" {
		return false
	}
	if (topic[0] == '$') != (filter[0] == '$') {
		return false
	}
	for {
		fl, frest, fmore := strings.Cut(filter, "/")
		if fl == "#" {
			return true
		}
		tl, trest, tmore := strings.Cut(topic, "/")
		if fl != "+" && fl != tl {
			return false
		}
		if !fmore {
			return !tmore
		}
		if !tmore {
			return frest == "#"
		}
		filter, topic = frest, trest
	}
}

// dollarApart reports whether the '$' rule keeps two filters (as levels)
// from ever matching the same topic: one starts with a literal $-level and
// the other with a wildcard.
func dollarApart(a, b []string) bool {
	isDollar := func(l []string) bool { return strings.HasPrefix(l[0], "$") }
	isWild := func(l []string) bool { return l[0] == "+" || l[0] == "#" }
	return isDollar(a) && isWild(b) || isDollar(b) && isWild(a)
}

// filtersIntersect reports whether some topic name matches both filters.
func filtersIntersect(a, b []string) bool {
	if dollarApart(a, b) {
		return false
	}
	for i := 0; ; i++ {
		aEnd, bEnd := i >= len(a), i >= len(b)
		if aEnd && bEnd {
			return true
		}
		if !aEnd && a[i] == "#" || !bEnd && b[i] == "#" {
			return true
		}
		if aEnd || bEnd {
			return false
		}
		if a[i] != "+" && b[i] != "+" && a[i] != b[i] {
			return false
		}
	}
}

// filterCovers reports whether every topic matching f also matches d.
func filterCovers(d, f []string) bool {
	if strings.HasPrefix(f[0], "$") && (d[0] == "+" || d[0] == "#") {
		return false
	}
	for i := 0; ; i++ {
		dEnd, fEnd := i >= len(d), i >= len(f)
		if !dEnd && d[i] == "#" {
			return true
		}
		if dEnd || fEnd {
			return dEnd && fEnd
		}
		switch {
		case f[i] == "#":
			return false
		case d[i] == "+":
		case f[i] == "+" || f[i] != d[i]:
			return false
		}
	}
}
