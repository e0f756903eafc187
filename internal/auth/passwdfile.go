package auth

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
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
	// dummies are verified for unknown users so that the time a CONNECT
	// takes does not tell whether the username exists: one per distinct
	// hash kind and cost in the file, weighted by how many users have it
	// (see dummyFor).
	dummies []*hash
	weights []int
	total   int
	// key picks an unknown name's dummy: the digest of the file's bytes,
	// which an attacker does not know (it covers the salts) and which stays
	// the same across reloads of an unchanged file.
	key [sha256.Size]byte
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
		pf.addCost(h)
	}
	if err := sc.Err(); err != nil {
		return nil, &ParseError{File: name, Line: lineNo + 1, Msg: err.Error()}
	}
	if pf.total == 0 {
		pf.addCost(&hash{typ: SHA512PBKDF2, iterations: DefaultIterations, salt: make([]byte, saltLenV2), sum: make([]byte, mosquittoHashLen)})
	}
	pf.key = sha256.Sum256(data)
	return pf, nil
}

// sameCost reports whether two hashes take the same work to verify.
func sameCost(a, b *hash) bool {
	return a.typ == b.typ && a.iterations == b.iterations && a.memory == b.memory && a.time == b.time &&
		a.threads == b.threads && len(a.salt) == len(b.salt) && len(a.sum) == len(b.sum)
}

// addCost counts h's kind and cost among the file's.
func (p *PasswordFile) addCost(h *hash) {
	p.total++
	for i, d := range p.dummies {
		if sameCost(d, h) {
			p.weights[i]++
			return
		}
	}
	p.dummies = append(p.dummies, dummyLike(h))
	p.weights = append(p.weights, 1)
}

// dummyFor is the hash an unknown username is checked against. In a file
// that mixes kinds and costs ($6$, $7$ with several iteration counts,
// argon2id), one dummy of a single cost would set unknown names apart from
// every user of another cost; checking each kind in turn would make unknown
// names the slowest of all. Instead each unknown name gets one of the
// file's costs, chosen by a keyed hash of the name, with the odds of the
// users: unknown names cost what real logins cost, in the same proportions,
// and the same name always costs the same, so repeating a probe tells
// nothing more. It costs no more CPU than a real check.
func (p *PasswordFile) dummyFor(username string) *hash {
	if len(p.dummies) == 1 {
		return p.dummies[0]
	}
	m := hmac.New(sha256.New, p.key[:])
	m.Write([]byte(username))
	n := int(binary.BigEndian.Uint64(m.Sum(nil)) % uint64(p.total))
	for i, w := range p.weights {
		if n < w {
			return p.dummies[i]
		}
		n -= w
	}
	return p.dummies[len(p.dummies)-1]
}

// dummyLike returns a hash with h's cost and a zero salt and sum, for
// unknown users: no password matches it.
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
		p.dummyFor(username).verify(password)
		return false
	}
	return e.h.verify(password)
}
