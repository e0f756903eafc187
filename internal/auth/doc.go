// Package auth implements mamori's authentication and authorization data:
// Mosquitto password files ($6$, $7$ and $argon2id$ hashes), a verification
// cache and a failed-login throttle that keep password hashing from becoming
// a denial of service, Mosquitto ACL files, PSK files and the usernames
// derived from TLS client certificates.
//
// Everything here is safe for concurrent use. Loaded files are immutable:
// a reload builds a new *PasswordFile or *ACL and the broker swaps the
// pointer, so a check never sees half of an old file and half of a new one.
//
// See README.md for the exact Mosquitto semantics implemented and where
// mamori deliberately differs.
package auth

import "fmt"

// ParseError is a problem in a password, ACL or PSK file. It names the file
// and the 1-based line so the operator can go straight to it. Msg never
// contains a password or a password hash: a plain-text password left in a
// password file must not end up in a log.
type ParseError struct {
	File string
	Line int
	Msg  string
}

// Error formats the error as "file:line: msg", the form editors and
// terminals turn into links.
func (e *ParseError) Error() string {
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}
