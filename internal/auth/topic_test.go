package auth

import (
	"strings"
	"testing"
)

func TestTopicMatch(t *testing.T) {
	tests := []struct {
		filter, topic string
		want          bool
	}{
		{"a/b", "a/b", true},
		{"a/b", "a/c", false},
		{"a/+", "a/b", true},
		{"a/+", "a/", true},
		{"a/+", "a", false},
		{"a/+", "a/b/c", false},
		{"a/#", "a", true},
		{"a/#", "a/b/c", true},
		{"#", "a/b", true},
		{"#", "/a", true},
		{"+/+", "/a", true},
		{"#", "$SYS/x", false},
		{"+/x", "$SYS/x", false},
		{"$SYS/#", "$SYS/x", true},
		{"$SYS/#", "SYS/x", false},
		{"a/b", "a/b/", false},
		{"", "a", false},
	}
	for _, tt := range tests {
		if got := topicMatch(tt.filter, tt.topic); got != tt.want {
			t.Errorf("topicMatch(%q, %q) = %v, want %v", tt.filter, tt.topic, got, tt.want)
		}
	}
}

func TestFiltersIntersectCovers(t *testing.T) {
	tests := []struct {
		a, b             string
		intersect, cover bool // cover: a covers b
	}{
		{"a/#", "a/b", true, true},
		{"a/b", "a/#", true, false},
		{"a/+", "+/b", true, false},
		{"a/+", "a/+", true, true},
		{"a/+", "a/#", true, false},
		{"a/#", "a", true, true},
		{"a", "a/#", true, false},
		{"a/b", "a/c", false, false},
		{"#", "$SYS/#", false, false},
		{"$SYS/#", "#", false, false},
		{"$SYS/#", "$SYS/a", true, true},
		{"+", "$x", false, false},
		{"#", "a/+/c", true, true},
		{"a/+/c", "a/b/+", true, false},
		{"a/b/c", "a/b", false, false},
	}
	for _, tt := range tests {
		a, b := strings.Split(tt.a, "/"), strings.Split(tt.b, "/")
		if got := filtersIntersect(a, b); got != tt.intersect {
			t.Errorf("filtersIntersect(%q, %q) = %v", tt.a, tt.b, got)
		}
		if got := filtersIntersect(b, a); got != tt.intersect {
			t.Errorf("filtersIntersect(%q, %q) = %v (not symmetric)", tt.b, tt.a, got)
		}
		if got := filterCovers(a, b); got != tt.cover {
			t.Errorf("filterCovers(%q, %q) = %v", tt.a, tt.b, got)
		}
	}
}

func TestValidFilter(t *testing.T) {
	for _, ok := range []string{"a", "#", "+", "a/+/b", "a/#", "/", "$SYS/#", "a b"} {
		if err := validFilter(ok); err != nil {
			t.Errorf("validFilter(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a#", "a/#/b", "a+/b", "\xff", "a\x00b"} {
		if validFilter(bad) == nil {
			t.Errorf("validFilter(%q) = nil", bad)
		}
	}
}
