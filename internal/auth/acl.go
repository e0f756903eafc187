package auth

import (
	"fmt"
	"os"
	"strings"
)

// Access is what a client wants to do with a topic.
type Access uint8

// The kinds of access. Read is checked for every message delivered to a
// client (retained messages included); Write for every PUBLISH and for a
// will when it is published; Subscribe for each filter of a SUBSCRIBE.
const (
	Read Access = 1 << iota
	Write
	Subscribe
)

// String returns "read", "write" or "subscribe".
func (a Access) String() string {
	switch a {
	case Read:
		return "read"
	case Write:
		return "write"
	case Subscribe:
		return "subscribe"
	}
	return fmt.Sprintf("Access(%d)", uint8(a))
}

// Client is the identity an ACL decision is about.
type Client struct {
	// ID is the client identifier (after auto_id_prefix assignment).
	ID string
	// Username is the CONNECT username, or the identity taken from the
	// client certificate or PSK (see CertUsername).
	Username string
	// Anonymous is true when the client has no username at all (no
	// username in CONNECT and no TLS/PSK identity). Such clients get the
	// rules written before the first "user" line. A client that sent an
	// empty username is not anonymous, as in Mosquitto.
	Anonymous bool
}

// ACL is a loaded Mosquitto acl_file. It is immutable and safe for
// concurrent use; reload by loading a new one and swapping.
//
// A nil *ACL stands for "no acl_file": everything is allowed except what
// Mosquitto forbids to every client (publishing to $SYS, publishing to or
// reading $share topics).
type ACL struct {
	path     string
	anon     *ruleList
	users    map[string]*ruleList // only to find a user's list; order lives in the list
	patterns ruleList
	warnings []string
}

// ruleList keeps deny rules apart from grants because Mosquitto consults
// every deny of a list before any grant of it; within each, file order.
type ruleList struct {
	deny, grant []aclRule
}

type aclRule struct {
	filter string
	access Access // Read|Write; 0 in deny rules
	line   int
	hasU   bool // pattern uses %u: skipped for anonymous clients
	subst  bool // pattern uses %c or %u
}

func (l *ruleList) add(r aclRule) {
	if r.access == 0 {
		l.deny = append(l.deny, r)
	} else {
		l.grant = append(l.grant, r)
	}
}

func (l *ruleList) empty() bool { return len(l.deny) == 0 && len(l.grant) == 0 }

// LoadACLFile reads and parses an acl_file.
func LoadACLFile(path string) (*ACL, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("acl_file: %w", err)
	}
	return ParseACL(path, data)
}

// ParseACL parses the contents of an acl_file; name is used in errors,
// which name the line and quote the offending token.
//
// Syntax, as Mosquitto 2.0 reads it: blank lines and lines starting with
// '#' are ignored; "user NAME" starts the rules of user NAME (the rest of
// the line, so names may contain spaces); "topic [ACCESS] FILTER" adds a
// rule to the current user, or to anonymous clients before the first user
// line; "pattern [ACCESS] FILTER" adds a rule for every client, with %c and
// %u replaced by the client id and username. ACCESS is read, write,
// readwrite (the default) or deny. As in Mosquitto, a line with a single
// word after the keyword takes it as the filter, so "topic read" grants
// readwrite on the topic "read".
func ParseACL(name string, data []byte) (*ACL, error) {
	a := &ACL{path: name, anon: &ruleList{}, users: make(map[string]*ruleList)}
	cur := a.anon
	for i, raw := range strings.Split(string(data), "\n") {
		lineNo := i + 1
		perr := func(format string, args ...any) error {
			return &ParseError{File: name, Line: lineNo, Msg: fmt.Sprintf(format, args...)}
		}
		line := strings.Trim(raw, " \t\r\v\f")
		if line == "" || line[0] == '#' {
			continue
		}
		kw, rest := cutWord(line)
		switch kw {
		case "user":
			if rest == "" {
				return nil, perr("\"user\" needs a username")
			}
			l, ok := a.users[rest]
			if !ok {
				l = &ruleList{}
				a.users[rest] = l
			}
			cur = l
		case "topic", "pattern":
			if rest == "" {
				return nil, perr("%q needs a topic", kw)
			}
			accessWord, filter := cutWord(rest)
			if filter == "" {
				accessWord, filter = "", accessWord
			}
			r := aclRule{filter: filter, line: lineNo}
			switch accessWord {
			case "", "readwrite":
				r.access = Read | Write
			case "read":
				r.access = Read
			case "write":
				r.access = Write
			case "deny":
				r.access = 0
			default:
				return nil, perr("invalid access type %q (want read, write, readwrite or deny)", accessWord)
			}
			if err := validFilter(filter); err != nil {
				return nil, perr("invalid topic %q: %v", filter, err)
			}
			if kw == "topic" {
				cur.add(r)
				continue
			}
			r.hasU = strings.Contains(filter, "%u")
			r.subst = r.hasU || strings.Contains(filter, "%c")
			if !r.subst {
				a.warnings = append(a.warnings, fmt.Sprintf("%s:%d: pattern %q contains neither %%c nor %%u; it applies to every client as is", name, lineNo, filter))
			}
			a.patterns.add(r)
		default:
			return nil, perr("unknown keyword %q (want topic, pattern or user)", kw)
		}
	}
	return a, nil
}

// cutWord splits off the first blank-separated word and returns it and the
// rest with surrounding blanks removed.
func cutWord(s string) (word, rest string) {
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.Trim(s[i:], " \t")
}

// Path returns the file name the ACL was loaded from.
func (a *ACL) Path() string { return a.path }

// Warnings returns non-fatal remarks found while parsing (Mosquitto logs
// the same ones), each prefixed with file:line.
func (a *ACL) Warnings() []string { return a.warnings }

// Check reports whether client c may have access to topic. For Read and
// Write, topic is a topic name; for Subscribe it is a topic filter, maybe a
// shared subscription "$share/group/filter". The semantics are Mosquitto
// 2.0's, described in README.md:
//
//   - publishing to any topic starting with "$SYS" is always denied, and
//     $share/... is only ever a subscription;
//   - the client's own list (its user's rules, or the anonymous rules) is
//     consulted first: a matching deny denies, else a matching grant allows;
//   - then the patterns, likewise deny before grant; if the username or
//     client id contains '+' or '#' all patterns deny, so a client cannot
//     widen a pattern by choosing its name;
//   - no matching rule denies.
func (a *ACL) Check(c Client, topic string, access Access) bool {
	if topic == "" {
		return false
	}
	if access == Subscribe {
		if g, ok := strings.CutPrefix(topic, "$share/"); ok {
			_, f, ok := strings.Cut(g, "/")
			if !ok || f == "" {
				return false
			}
			topic = f
		}
		if a == nil {
			return true
		}
		return a.checkSubscribe(c, strings.Split(topic, "/"))
	}
	if strings.HasPrefix(topic, "$share/") || access == Write && strings.HasPrefix(topic, "$SYS") {
		return false
	}
	if a == nil {
		return true
	}
	if l := a.listFor(c); l != nil {
		for i := range l.deny {
			if topicMatch(l.deny[i].filter, topic) {
				return false
			}
		}
		for i := range l.grant {
			if l.grant[i].access&access != 0 && topicMatch(l.grant[i].filter, topic) {
				return true
			}
		}
	}
	if a.patterns.empty() || dangerousIdentity(c) {
		return false
	}
	for i := range a.patterns.deny {
		if f, ok := a.patterns.deny[i].expand(c); ok && topicMatch(f, topic) {
			return false
		}
	}
	for i := range a.patterns.grant {
		r := &a.patterns.grant[i]
		if r.access&access == 0 {
			continue
		}
		if f, ok := r.expand(c); ok && topicMatch(f, topic) {
			return true
		}
	}
	return false
}

// checkSubscribe decides a subscription filter. Mosquitto 2.0 grants every
// subscription and filters each message with a Read check at delivery;
// mamori keeps that delivery check (the broker must still call Check with
// Read for every message) and in addition refuses a subscription that no
// read rule can ever satisfy, so the client gets a failure code instead of
// a silent, useless subscription. A filter is refused when a deny rule
// covers all of it, or when no read grant overlaps it.
func (a *ACL) checkSubscribe(c Client, f []string) bool {
	if l := a.listFor(c); l != nil {
		for i := range l.deny {
			if filterCovers(strings.Split(l.deny[i].filter, "/"), f) {
				return false
			}
		}
		for i := range l.grant {
			if l.grant[i].access&Read != 0 && filtersIntersect(strings.Split(l.grant[i].filter, "/"), f) {
				return true
			}
		}
	}
	if a.patterns.empty() || dangerousIdentity(c) {
		return false
	}
	for i := range a.patterns.deny {
		if p, ok := a.patterns.deny[i].expand(c); ok && filterCovers(strings.Split(p, "/"), f) {
			return false
		}
	}
	for i := range a.patterns.grant {
		r := &a.patterns.grant[i]
		if r.access&Read == 0 {
			continue
		}
		if p, ok := r.expand(c); ok && filtersIntersect(strings.Split(p, "/"), f) {
			return true
		}
	}
	return false
}

// listFor returns the rules of c's user, or the anonymous rules, or nil.
func (a *ACL) listFor(c Client) *ruleList {
	if c.Anonymous {
		return a.anon
	}
	return a.users[c.Username]
}

// dangerousIdentity: with patterns in use, a '+' or '#' in the username or
// client id would turn into a wildcard after substitution.
func dangerousIdentity(c Client) bool {
	return !c.Anonymous && strings.ContainsAny(c.Username, "+#") || strings.ContainsAny(c.ID, "+#")
}

// expand substitutes %c and %u textually, anywhere in the filter, as
// Mosquitto 2.0 does (so "a/x%c" works, and a '/' in a username spans
// levels). ok is false for a %u pattern and an anonymous client.
func (r *aclRule) expand(c Client) (string, bool) {
	if !r.subst {
		return r.filter, true
	}
	if r.hasU && c.Anonymous {
		return "", false
	}
	var b strings.Builder
	b.Grow(len(r.filter) + len(c.ID) + len(c.Username))
	s := r.filter
	for {
		i := strings.IndexByte(s, '%')
		if i < 0 || i == len(s)-1 {
			b.WriteString(s)
			return b.String(), true
		}
		b.WriteString(s[:i])
		switch s[i+1] {
		case 'c':
			b.WriteString(c.ID)
			s = s[i+2:]
		case 'u':
			if c.Anonymous {
				b.WriteString("%u")
			} else {
				b.WriteString(c.Username)
			}
			s = s[i+2:]
		default:
			b.WriteByte('%')
			s = s[i+1:]
		}
	}
}
