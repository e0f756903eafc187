package topic

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzTopic checks that validation, Match, Tree and Retained agree with each
// other and with oracleMatch, and that none of them panics on arbitrary
// input. Seeds: matchTests below and testdata/fuzz/FuzzTopic.
//
//	go test ./internal/topic -run '^$' -fuzz FuzzTopic -fuzztime 30s
func FuzzTopic(f *testing.F) {
	for _, tt := range matchTests {
		f.Add(tt.filter, tt.topic)
	}
	f.Fuzz(func(t *testing.T, filter, name string) {
		nameErr, filterErr := ValidName(name), ValidFilter(filter)

		// Whatever they are, matching them must not panic.
		_ = Match(filter, name)
		tr := NewTree[int]()
		tr.Subscribe("c", filter, 1)
		tr.Match(name, func(string, *int) {})
		tr.MatchShared(name, func(*SharedGroup[int]) {})
		if !tr.Unsubscribe("c", filter) || tr.nodes != 0 {
			t.Fatalf("Unsubscribe(%q) did not undo Subscribe: nodes %d", filter, tr.nodes)
		}

		// Every valid name is a valid filter that matches itself.
		if nameErr == nil {
			if ValidFilter(name) != nil {
				t.Fatalf("valid name %q is an invalid filter: %v", name, ValidFilter(name))
			}
			if !utf8.ValidString(name) || strings.ContainsAny(name, "\x00+#") || name == "" || len(name) > MaxLen {
				t.Fatalf("ValidName accepted %q", name)
			}
		}
		if filterErr == nil {
			if ValidFilter(filter) != nil || !utf8.ValidString(filter) || strings.IndexByte(filter, 0) >= 0 {
				t.Fatalf("ValidFilter accepted %q", filter)
			}
			if ValidName(filter) == nil && !Match(filter, filter) {
				t.Fatalf("name %q does not match itself", filter)
			}
		}

		// ParseShared agrees with ValidFilter.
		group, inner, shared, err := ParseShared(filter)
		switch {
		case !shared && (err == nil) != (filterErr == nil):
			t.Fatalf("ParseShared(%q) = %v, ValidFilter = %v", filter, err, filterErr)
		case shared && err == nil:
			if ValidFilter(inner) != nil || group == "" || strings.ContainsAny(group, "/+#") ||
				filter != SharePrefix+group+"/"+inner {
				t.Fatalf("ParseShared(%q) = %q, %q", filter, group, inner)
			}
		}

		if nameErr != nil || filterErr != nil {
			return
		}
		want := oracleMatch(filter, name)
		if got := Match(filter, name); got != want {
			t.Fatalf("Match(%q, %q) = %v, oracle %v", filter, name, got, want)
		}
		tr.Subscribe("c", filter, 1)
		n := 0
		tr.Match(name, func(string, *int) { n++ })
		if (n == 1) != want || n > 1 {
			t.Fatalf("Tree with %q: Match(%q) reported %d, oracle %v", filter, name, n, want)
		}
		r := NewRetained[int]()
		r.Set(name, 1)
		n = 0
		r.Match(filter, func(string, int) bool { n++; return true })
		if (n == 1) != want || n > 1 {
			t.Fatalf("Retained with %q: Match(%q) reported %d, oracle %v", name, filter, n, want)
		}
		if !r.Delete(name) || r.nodes != 0 {
			t.Fatalf("Retained Delete(%q) left %d nodes", name, r.nodes)
		}
	})
}
