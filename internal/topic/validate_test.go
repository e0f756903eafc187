package topic

import (
	"errors"
	"strings"
	"testing"
)

func TestValidName(t *testing.T) {
	tests := []struct {
		name  string
		topic string
		want  error
	}{
		{"simple", "a/b/c", nil},
		{"single level", "a", nil},
		{"single slash is two empty levels [MQTT-4.7.1-1]", "/", nil},
		{"leading slash", "/a", nil},
		{"trailing slash", "a/", nil},
		{"empty level", "a//b", nil},
		{"space is a valid character", "a b/c d", nil},
		{"dollar topic may be published to", "$SYS/broker/uptime", nil},
		{"unicode", "küche/温度/🌡", nil},
		{"max length [MQTT-4.7.3-3]", strings.Repeat("a", 65535), nil},
		{"too long [MQTT-4.7.3-3]", strings.Repeat("a", 65536), ErrTooLong},
		{"empty [MQTT-4.7.3-1]", "", ErrEmpty},
		{"null char [MQTT-4.7.3-2]", "a\x00b", ErrNull},
		{"null char after non-ASCII [MQTT-4.7.3-2]", "ü/\x00", ErrNull},
		{"invalid UTF-8 [MQTT-1.5.4-1]", "a/\xff", ErrInvalidUTF8},
		{"truncated UTF-8 [MQTT-1.5.4-1]", "a/\xc3", ErrInvalidUTF8},
		{"surrogate half U+D800 [MQTT-1.5.4-1]", "a/\xed\xa0\x80", ErrInvalidUTF8},
		{"overlong encoding [MQTT-1.5.4-1]", "\xc0\xaf", ErrInvalidUTF8},
		{"plus in name [MQTT-3.3.2-2]", "a/+/b", ErrWildcardInName},
		{"hash in name [MQTT-3.3.2-2]", "a/#", ErrWildcardInName},
		{"hash inside level [MQTT-3.3.2-2]", "a#b", ErrWildcardInName},
		{"plus inside level [MQTT-3.3.2-2]", "a+b", ErrWildcardInName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ValidName(tt.topic); !errors.Is(got, tt.want) {
				t.Errorf("ValidName(%.40q) = %v, want %v", tt.topic, got, tt.want)
			}
		})
	}
}

func TestValidFilter(t *testing.T) {
	tests := []struct {
		name   string
		filter string
		want   error
	}{
		{"literal", "a/b/c", nil},
		{"hash alone [MQTT-4.7.1-1]", "#", nil},
		{"hash after separator [MQTT-4.7.1-1]", "sport/tennis/#", nil},
		{"hash after empty level", "/#", nil},
		{"plus alone [MQTT-4.7.1-2]", "+", nil},
		{"plus first level", "+/tennis/#", nil},
		{"plus last level", "sport/+", nil},
		{"plus middle level", "sport/+/player1", nil},
		{"plus plus", "+/+", nil},
		{"plus then empty level", "+/", nil},
		{"empty then plus", "/+", nil},
		{"plus and hash", "+/#", nil},
		{"empty levels", "a//b", nil},
		{"single slash", "/", nil},
		{"dollar", "$SYS/#", nil},
		{"share prefix is only a literal here", "$share/g/a", nil},
		{"unicode", "küche/+/温度", nil},
		{"max length [MQTT-4.7.3-3]", strings.Repeat("a", 65535), nil},
		{"too long [MQTT-4.7.3-3]", strings.Repeat("a", 65534) + "/#", ErrTooLong},
		{"empty [MQTT-4.7.3-1]", "", ErrEmpty},
		{"null char [MQTT-4.7.3-2]", "a/\x00/#", ErrNull},
		{"invalid UTF-8 [MQTT-1.5.4-1]", "\xff/#", ErrInvalidUTF8},
		{"hash not last [MQTT-4.7.1-1]", "sport/tennis/#/ranking", ErrMultiLevelWildcard},
		{"hash not alone [MQTT-4.7.1-1]", "sport/tennis#", ErrMultiLevelWildcard},
		{"hash before separator [MQTT-4.7.1-1]", "#/", ErrMultiLevelWildcard},
		{"double hash [MQTT-4.7.1-1]", "##", ErrMultiLevelWildcard},
		{"hash then plus [MQTT-4.7.1-1]", "#/+", ErrMultiLevelWildcard},
		{"plus with suffix [MQTT-4.7.1-2]", "sport+", ErrSingleLevelWildcard},
		{"plus with prefix [MQTT-4.7.1-2]", "sport/+player", ErrSingleLevelWildcard},
		{"plus inside level [MQTT-4.7.1-2]", "a/b+c/d", ErrSingleLevelWildcard},
		{"double plus [MQTT-4.7.1-2]", "++", ErrSingleLevelWildcard},
		{"plus hash in one level", "+#", ErrSingleLevelWildcard},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ValidFilter(tt.filter); !errors.Is(got, tt.want) {
				t.Errorf("ValidFilter(%.40q) = %v, want %v", tt.filter, got, tt.want)
			}
		})
	}
}

func TestParseShared(t *testing.T) {
	tests := []struct {
		name   string
		filter string
		group  string
		inner  string
		shared bool
		err    error
	}{
		{"not shared", "a/b", "", "a/b", false, nil},
		{"not shared, invalid", "a/#/b", "", "a/#/b", false, ErrMultiLevelWildcard},
		{"$share without slash is a literal", "$share", "", "$share", false, nil},
		{"$shared is a literal", "$shared/g/a", "", "$shared/g/a", false, nil},
		{"shared literal", "$share/g1/a/b", "g1", "a/b", true, nil},
		{"shared hash", "$share/g/#", "g", "#", true, nil},
		{"shared plus", "$share/g/+/x", "g", "+/x", true, nil},
		{"shared empty level filter", "$share/g//", "g", "/", true, nil},
		{"shared dollar filter", "$share/g/$SYS/#", "g", "$SYS/#", true, nil},
		{"group may contain $ and unicode", "$share/$grüppe/a", "$grüppe", "a", true, nil},
		{"empty group [MQTT-4.8.2-1]", "$share//a", "", "", true, ErrShareName},
		{"only prefix [MQTT-4.8.2-1]", "$share/", "", "", true, ErrShareName},
		{"plus in group [MQTT-4.8.2-2]", "$share/g+/a", "", "", true, ErrShareName},
		{"hash in group [MQTT-4.8.2-2]", "$share/#/a", "", "", true, ErrShareName},
		{"plus group, no filter [MQTT-4.8.2-2]", "$share/+", "", "", true, ErrShareName},
		{"group without slash and filter [MQTT-4.8.2-2]", "$share/g", "", "", true, ErrShareFilter},
		{"group without filter [MQTT-4.8.2-2]", "$share/g/", "g", "", true, ErrShareFilter},
		{"invalid inner filter [MQTT-4.7.1-1]", "$share/g/a#", "g", "a#", true, ErrMultiLevelWildcard},
		{"invalid inner plus [MQTT-4.7.1-2]", "$share/g/a+", "g", "a+", true, ErrSingleLevelWildcard},
		{"null [MQTT-4.7.3-2]", "$share/g/\x00", "", "", true, ErrNull},
		{"invalid UTF-8 in group [MQTT-1.5.4-1]", "$share/\xff/a", "", "", true, ErrInvalidUTF8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			group, inner, shared, err := ParseShared(tt.filter)
			if !errors.Is(err, tt.err) || shared != tt.shared {
				t.Fatalf("ParseShared(%q) = shared %v, err %v; want %v, %v", tt.filter, shared, err, tt.shared, tt.err)
			}
			if err == nil && (group != tt.group || inner != tt.inner) {
				t.Errorf("ParseShared(%q) = %q, %q; want %q, %q", tt.filter, group, inner, tt.group, tt.inner)
			}
		})
	}
}

// matchTests is shared by the tests of Match, Tree and Retained.
var matchTests = []struct {
	name   string
	filter string
	topic  string
	want   bool
}{
	{"exact", "a/b/c", "a/b/c", true},
	{"exact differs", "a/b/c", "a/b/d", false},
	{"prefix filter", "a/b", "a/b/c", false},
	{"longer filter", "a/b/c", "a/b", false},
	{"case sensitive [MQTT-4.7.3-4]", "A/b", "a/b", false},
	{"no normalization [MQTT-4.7.3-4]", "caf\u00e9", "cafe\u0301", false},
	{"hash matches all", "#", "a/b/c", true},
	{"hash matches one level", "#", "a", true},
	{"hash matches empty levels", "#", "/", true},
	{"hash matches parent level [MQTT-4.7.1-1]", "sport/#", "sport", true},
	{"hash matches children", "sport/tennis/#", "sport/tennis/player1/ranking", true},
	{"hash matches one child", "sport/tennis/#", "sport/tennis/player1", true},
	{"hash matches empty child", "sport/#", "sport/", true},
	{"hash does not match sibling", "sport/tennis/#", "sport/football", false},
	{"hash does not match prefix of level", "sport/#", "sports", false},
	{"hash parent needs whole level", "sport/tennis/#", "sport", false},
	{"plus one level", "sport/+", "sport/tennis", true},
	{"plus not two levels", "sport/+", "sport/tennis/player1", false},
	{"plus needs a level", "sport/+", "sport", false},
	{"plus matches empty level", "sport/+", "sport/", true},
	{"plus alone", "+", "sport", true},
	{"plus alone vs two levels", "+", "sport/", false},
	{"plus middle", "sport/+/player1", "sport/tennis/player1", true},
	{"plus middle differs", "sport/+/player1", "sport/tennis/player2", false},
	{"plus plus vs leading slash", "+/+", "/finance", true},
	{"leading slash literal", "/+", "/finance", true},
	{"plus vs leading slash", "+", "/finance", false},
	{"plus first", "+/tennis/#", "sport/tennis/x", true},
	{"plus hash vs slash", "+/#", "/", true},
	{"plus hash vs single", "+/#", "a", true},
	{"empty levels exact", "a//b", "a//b", true},
	{"empty level vs none", "a//b", "a/b", false},
	{"plus matches empty middle", "a/+/b", "a//b", true},
	{"empty first level", "/a", "/a", true},
	{"empty first level vs none", "/a", "a", false},
	{"trailing slash", "a/", "a/", true},
	{"trailing slash vs none", "a/", "a", false},
	{"hash after empty", "/#", "/a/b", true},
	{"hash after empty vs no slash", "/#", "a", false},
	{"slash slash", "//", "//", true},
	{"dollar not matched by hash [MQTT-4.7.2-1]", "#", "$SYS/broker", false},
	{"dollar alone not matched by hash [MQTT-4.7.2-1]", "#", "$SYS", false},
	{"dollar not matched by plus [MQTT-4.7.2-1]", "+/broker", "$SYS/broker", false},
	{"dollar not matched by plus hash [MQTT-4.7.2-1]", "+/#", "$SYS/x", false},
	{"dollar literal", "$SYS/broker", "$SYS/broker", true},
	{"dollar then hash [MQTT-4.7.2-1]", "$SYS/#", "$SYS/broker/clients", true},
	{"dollar then hash parent", "$SYS/#", "$SYS", true},
	{"dollar then plus", "$SYS/+/clients", "$SYS/broker/clients", true},
	{"dollar later level is ordinary", "a/+", "a/$b", true},
	{"dollar later level hash", "a/#", "a/$b/c", true},
	{"dollar inside first level ok", "+/x", "a$/x", true},
	{"share prefix as name", "$share/#", "$share/g/a", true},
}

func TestMatch(t *testing.T) {
	for _, tt := range matchTests {
		t.Run(tt.name, func(t *testing.T) {
			if err := ValidFilter(tt.filter); err != nil {
				t.Fatalf("test filter %q invalid: %v", tt.filter, err)
			}
			if err := ValidName(tt.topic); err != nil {
				t.Fatalf("test topic %q invalid: %v", tt.topic, err)
			}
			if got := Match(tt.filter, tt.topic); got != tt.want {
				t.Errorf("Match(%q, %q) = %v, want %v", tt.filter, tt.topic, got, tt.want)
			}
			if got := oracleMatch(tt.filter, tt.topic); got != tt.want {
				t.Errorf("oracleMatch(%q, %q) = %v, want %v (test oracle broken)", tt.filter, tt.topic, got, tt.want)
			}
		})
	}
}

func TestMatchDoesNotAllocate(t *testing.T) {
	n := 0
	allocs := testing.AllocsPerRun(1000, func() {
		for _, tt := range matchTests {
			if Match(tt.filter, tt.topic) {
				n++
			}
		}
	})
	if n == 0 {
		t.Error("nothing matched")
	}
	if allocs != 0 {
		t.Errorf("Match allocates %v times per run", allocs)
	}
}

func TestValidDoesNotAllocate(t *testing.T) {
	allocs := testing.AllocsPerRun(1000, func() {
		_ = ValidName("device/1234/telemetry")
		_ = ValidName("a/+")
		_ = ValidFilter("device/+/telemetry/#")
		_ = ValidFilter("a/#/b")
		_, _, _, _ = ParseShared("$share/g/device/+")
	})
	if allocs != 0 {
		t.Errorf("validation allocates %v times per run", allocs)
	}
}

// oracleMatch is an independent, obviously correct implementation of
// Match built on strings.Split, used to check Match, Tree and Retained.
func oracleMatch(filter, name string) bool {
	f := strings.Split(filter, "/")
	n := strings.Split(name, "/")
	if strings.HasPrefix(name, "$") && (f[0] == "+" || f[0] == "#") {
		return false
	}
	for i, level := range f {
		if level == "#" {
			return i == len(f)-1
		}
		if i >= len(n) {
			return false
		}
		if level != "+" && level != n[i] {
			return false
		}
	}
	return len(f) == len(n)
}
