package auth

import (
	"errors"
	"strings"
	"testing"
)

// testACL is the file the semantics below were checked against with
// Debian's mosquitto 2.0.11 (mosquitto_pub/mosquitto_sub against a broker
// with this acl_file); each case notes what Mosquitto did.
const testACL = `# anonymous clients
topic read anon/#
user alice
topic read foo/#
topic write foo/pub
topic deny foo/secret
topic readwrite $SYS/#
topic readwrite $foo/#
user bob
topic readwrite #
user dave
topic readwrite d/#
topic readwrite e/dave
user with space
topic  read   spaced topic/x
pattern deny d/%u/x
pattern readwrite e/%u
pattern deny e/#
pattern readwrite pat/%u/#
pattern write cl/%c
pattern readwrite q/pre%u
pattern read anonc/%c
`

func TestACLCheck(t *testing.T) {
	acl, err := ParseACL("acl", []byte(testACL))
	if err != nil {
		t.Fatal(err)
	}
	anon := Client{ID: "anon1", Anonymous: true}
	alice := Client{ID: "a1", Username: "alice"}
	bob := Client{ID: "b1", Username: "bob"}
	dave := Client{ID: "d1", Username: "dave"}
	carol := Client{ID: "c1", Username: "carol"} // no user block
	tests := []struct {
		name   string
		c      Client
		topic  string
		access Access
		want   bool
	}{
		{"read rule allows read", alice, "foo/x", Read, true},
		{"read rule does not allow write", alice, "foo/x", Write, false},
		{"# matches parent level", alice, "foo", Read, true},
		{"write rule", alice, "foo/pub", Write, true},
		{"deny beats a grant written before it", alice, "foo/secret", Read, false},
		{"deny covers write too", alice, "foo/secret", Write, false},
		{"no rule: denied", alice, "bar", Read, false},
		{"$SYS readable with a $SYS rule", alice, "$SYS/broker/uptime", Read, true},
		{"$SYS never writable", alice, "$SYS/x", Write, false},
		{"$SYS prefix without slash not writable", bob, "$SYSTEM", Write, false},
		{"$-topic with its own rule", alice, "$foo/y", Write, true},
		{"# does not match $-topics", bob, "$foo/x", Write, false},
		{"# does not match $SYS", bob, "$SYS/broker/uptime", Read, false},
		{"readwrite #", bob, "any/thing", Write, true},
		{"anonymous rules for anonymous clients", anon, "anon/1", Read, true},
		{"anonymous rule is read only", anon, "anon/2", Write, false},
		{"anonymous rules not for named users", carol, "anon/1", Read, false},
		{"user grant beats a pattern deny", dave, "d/dave/x", Write, true},
		{"user grant e/dave", dave, "e/dave", Write, true},
		{"pattern deny before pattern grant", carol, "e/carol", Write, false},
		{"%u pattern for any user", carol, "pat/carol/q", Write, true},
		{"%u pattern is per user", carol, "pat/alice/q", Write, false},
		{"%u pattern skipped for anonymous", anon, "pat//q", Write, false},
		{"%c pattern", carol, "cl/c1", Write, true},
		{"%c pattern wrong id", carol, "cl/c2", Write, false},
		{"%c pattern for anonymous", anon, "anonc/anon1", Read, true},
		{"substitution inside a level", carol, "q/precarol", Write, true},
		{"literal %u is not the username", carol, "q/pre%u", Write, false},
		{"username with / spans levels", Client{ID: "x", Username: "a/b"}, "pat/a/b/z", Read, true},
		{"+ in username disables patterns", Client{ID: "x", Username: "a+"}, "pat/a+/z", Read, false},
		{"# in client id disables patterns", Client{ID: "x#", Username: "carol"}, "pat/carol/z", Read, false},
		{"+ in id still gets user rules", Client{ID: "x+", Username: "bob"}, "any", Read, true},
		{"username with spaces", Client{ID: "s", Username: "with space"}, "spaced topic/x", Read, true},
		{"$share is never a topic name", bob, "$share/g/t", Write, false},
		{"empty topic", bob, "", Read, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := acl.Check(tt.c, tt.topic, tt.access); got != tt.want {
				t.Errorf("Check(%+v, %q, %v) = %v, want %v", tt.c, tt.topic, tt.access, got, tt.want)
			}
		})
	}
}

func TestACLSubscribe(t *testing.T) {
	acl, err := ParseACL("acl", []byte(testACL))
	if err != nil {
		t.Fatal(err)
	}
	alice := Client{ID: "a1", Username: "alice"}
	carol := Client{ID: "c1", Username: "carol"}
	tests := []struct {
		name   string
		c      Client
		filter string
		want   bool
	}{
		{"exact read topic", alice, "foo/x", true},
		{"wider filter overlapping a read rule", alice, "#", true},
		{"+ overlapping", alice, "+/x", true},
		{"narrower filter", alice, "foo/+/z", true},
		{"no read rule overlaps", alice, "bar/#", false},
		{"write-only rule does not grant subscribe", carol, "cl/c1", false},
		{"fully denied filter", alice, "foo/secret", false},
		{"partly denied filter is allowed (delivery filters)", alice, "foo/+", true},
		{"$SYS with a $SYS rule", alice, "$SYS/#", true},
		{"# does not reach $ rules", Client{ID: "z", Username: "dave"}, "$SYS/#", false},
		{"wildcard filter vs $ rules", alice, "+/broker", true}, // overlaps foo/# at foo/broker
		{"pattern read", carol, "pat/carol/#", true},
		{"pattern read other user", carol, "pat/alice/#", false},
		{"shared subscription checks the filter", alice, "$share/g/foo/x", true},
		{"shared subscription denied filter", alice, "$share/g/bar", false},
		{"malformed share", alice, "$share/g", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := acl.Check(tt.c, tt.filter, Subscribe); got != tt.want {
				t.Errorf("Check(%+v, %q, Subscribe) = %v, want %v", tt.c, tt.filter, got, tt.want)
			}
		})
	}
}

func TestNilACL(t *testing.T) {
	var acl *ACL
	c := Client{ID: "x", Anonymous: true}
	if !acl.Check(c, "a/b", Write) || !acl.Check(c, "#", Subscribe) || !acl.Check(c, "$SYS/x", Read) {
		t.Error("nil ACL must allow ordinary access")
	}
	if acl.Check(c, "$SYS/x", Write) || acl.Check(c, "$share/g/t", Write) {
		t.Error("nil ACL must still deny $SYS publishes and $share topic names")
	}
}

func TestEmptyACLDeniesAll(t *testing.T) {
	// CVE-2018-12550: an acl_file with only comments must deny, not allow.
	acl, err := ParseACL("acl", []byte("# nothing\n\n"))
	if err != nil {
		t.Fatal(err)
	}
	if acl.Check(Client{ID: "x", Username: "u"}, "a", Read) || acl.Check(Client{ID: "x", Anonymous: true}, "a", Subscribe) {
		t.Error("empty ACL allowed access")
	}
}

func TestACLQuirks(t *testing.T) {
	acl, err := ParseACL("acl", []byte("topic read\n\tuser\tbob \ntopic write  a b \n"))
	if err != nil {
		t.Fatal(err)
	}
	// "topic read" is the topic "read" with readwrite access, as in Mosquitto.
	if !acl.Check(Client{ID: "x", Anonymous: true}, "read", Write) {
		t.Error(`"topic read" should grant readwrite on "read"`)
	}
	if !acl.Check(Client{ID: "x", Username: "bob"}, "a b", Write) {
		t.Error("topic with a space not parsed")
	}
	if len(acl.Warnings()) != 0 {
		t.Errorf("warnings: %v", acl.Warnings())
	}
	acl, _ = ParseACL("acl", []byte("pattern read x/y\n"))
	if w := acl.Warnings(); len(w) != 1 || !strings.HasPrefix(w[0], "acl:1:") {
		t.Errorf("pattern without %%c/%%u should warn with file:line, got %v", w)
	}
}

func TestACLParseErrors(t *testing.T) {
	tests := []struct{ name, data, want string }{
		{"bad access", "topic reed foo/bar", `acl:1: invalid access type "reed"`},
		{"empty topic", "\n\ntopic", `acl:3: "topic" needs a topic`},
		{"empty user", "user   ", `acl:1: "user" needs a username`},
		{"unknown keyword", "topc read a", `acl:1: unknown keyword "topc"`},
		{"bad wildcard", "topic read a/b#", `acl:1: invalid topic "a/b#"`},
		{"# not last", "pattern read #/a", `acl:1: invalid topic "#/a"`},
		{"indented comment is fine, later error", "  # c\ntopic x y z", `acl:2: invalid access type "x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseACL("acl", []byte(tt.data))
			var pe *ParseError
			if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.As(err, &pe) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

// BenchmarkACLRead measures the per-delivery check.
func BenchmarkACLRead(b *testing.B) {
	acl, _ := ParseACL("acl", []byte(testACL))
	c := Client{ID: "c1", Username: "carol"}
	b.ReportAllocs()
	for b.Loop() {
		acl.Check(c, "pat/carol/some/topic", Read)
	}
}
