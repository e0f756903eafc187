package auth

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"
	"unicode/utf8"
)

// maxFieldLen mirrors Mosquitto's limit on usernames and password fields.
const maxFieldLen = 65535

// PasswordFile is a loaded Mosquitto password_file. It is immutable and
// safe for concurrent use; reload by loading a new one and swapping.
type PasswordFile struct {
	path  string
	users map[string]*pwEntry
	// dummy is verified for unknown users so that the time a CONNECT takes
	// does not tell whether the username exists.
	dummy *hash
	// skipped are the lines that could not be used (*ParseError each).
	skipped []error
}

// Skipped returns the malformed lines that were left out, each a
// *ParseError naming the file and line. The users on them cannot log in;
// the broker logs these as warnings at every load.
func (pf *PasswordFile) Skipped() []error { return pf.skipped }

type pwEntry struct {
	encoded string // the hash field as written; part of the cache key
	h       *hash
}

// LoadPasswordFile reads and parses a password file. Like Mosquitto, a
// malformed line does not stop the broker: the line is left out (its user
// cannot log in) and reported by Skipped, naming the file and line, so the
// broker can say so in its log instead of locking the user out silently.
// A user defined twice is an error: which password would count is unclear.
func LoadPasswordFile(path string) (*PasswordFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("password_file: %w", err)
	}
	return ParsePasswordFile(path, data)
}

// ParsePasswordFile parses the contents of a password file; name is used in
// errors. Lines are "username:hash"; blank lines and lines starting with
// '#' are ignored; blanks around the username and the hash are trimmed, as
// Mosquitto does.
func ParsePasswordFile(name string, data []byte) (*PasswordFile, error) {
	pf := &PasswordFile{path: name, users: make(map[string]*pwEntry)}
	firstLine := make(map[string]int)
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 2*maxFieldLen+16)
	lineNo := 0
	for sc.Scan() {
		lineNo++
		perr := func(format string, args ...any) error {
			return &ParseError{File: name, Line: lineNo, Msg: fmt.Sprintf(format, args...)}
		}
		skip := func(format string, args ...any) {
			pf.skipped = append(pf.skipped, perr(format, args...))
		}
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		user, field, ok := strings.Cut(line, ":")
		if !ok {
			skip("expected username:hash, found no ':'")
			continue
		}
		user, field = strings.TrimSpace(user), strings.TrimSpace(field)
		switch {
		case user == "":
			skip("empty username")
			continue
		case len(user) > maxFieldLen || len(field) > maxFieldLen:
			skip("line too long")
			continue
		case !utf8.ValidString(user):
			skip("username is not valid UTF-8")
			continue
		}
		if prev, dup := firstLine[user]; dup {
			return nil, perr("user %q is already defined at line %d", user, prev)
		}
		firstLine[user] = lineNo
		switch {
		case strings.Contains(field, ":"):
			skip("user %q: more than one ':' on the line", user)
			continue
		case field == "":
			skip("user %q: no password hash", user)
			continue
		}
		h, err := parseHash(field)
		if err != nil {
			skip("user %q: %v", user, err)
			continue
		}
		pf.users[user] = &pwEntry{encoded: field, h: h}
		if pf.dummy == nil {
			pf.dummy = dummyLike(h)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, &ParseError{File: name, Line: lineNo + 1, Msg: err.Error()}
	}
	if pf.dummy == nil {
		pf.dummy = dummyLike(&hash{typ: SHA512PBKDF2, iterations: DefaultIterations})
	}
	return pf, nil
}

// dummyLike returns a hash with h's cost and a random salt, for unknown
// users. The first user's parameters are used rather than the most
// expensive ones so that a probe for unknown names costs what a typical
// login costs, no more.
func dummyLike(h *hash) *hash {
	d := *h
	d.salt = make([]byte, len(h.salt))
	d.sum = make([]byte, len(h.sum))
	return &d
}

// Path returns the file name the password file was loaded from.
func (p *PasswordFile) Path() string { return p.path }

// Len returns the number of users.
func (p *PasswordFile) Len() int { return len(p.users) }

// Has reports whether username has an entry. The broker uses it on reload
// to disconnect clients whose user was deleted.
func (p *PasswordFile) Has(username string) bool {
	_, ok := p.users[username]
	return ok
}

// Check reports whether password is username's password. It always does
// the work of one verification, also for an unknown user, so response time
// does not reveal which usernames exist. It costs a full hash computation;
// the broker should call Verifier.Check, which caches successes.
func (p *PasswordFile) Check(username, password string) bool {
	e, ok := p.users[username]
	if !ok {
		p.dummy.verify(password)
		return false
	}
	return e.h.verify(password)
}
