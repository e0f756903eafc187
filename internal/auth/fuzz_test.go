package auth

import (
	"strings"
	"testing"
)

// FuzzParsePasswordFile: the parser never panics, and whatever it accepts
// can be checked without panicking. Argon2 lines are capped in the corpus'
// spirit by parseArgon2id's limits; keep m small in seeds.
func FuzzParsePasswordFile(f *testing.F) {
	f.Add([]byte("alice:$7$101$D8mj9xbJRyJsBdhF$ACE1PRcFrp8tvukUUl5JaP7bwD4XZNRA7bErBNYv6JdiLBPRkAqQ8RhMSIwhntMTLCl4Xfp7hFr8eL28Hv5Dxg==\n"))
	f.Add([]byte("# c\n\nbob:$6$g9iD704NLhw0NWAd$aU6vUJntr71q95ig5vph31JHwJUBLAttFMnzsq40lmiRIkcZsiGcOVoBlnC3g+bbga8JkHIS34/WD8OKgAaA/g==\n"))
	f.Add([]byte("u:$argon2id$v=19$m=8,t=1,p=1$c29tZXNhbHQ$c29tZXNhbHQ\n"))
	f.Add([]byte("bob:hunter2\nx\n:\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		pf, err := ParsePasswordFile("fuzz", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz:") {
				t.Fatalf("error without file:line: %v", err)
			}
			return
		}
		for u, e := range pf.users {
			// Only cheap hashes: the fuzzer must not stall on cost.
			if e.h.iterations <= 1000 && e.h.memory <= 1024 && e.h.time <= 2 {
				pf.Check(u, "x")
			}
		}
	})
}

// FuzzParseACL: the parser never panics, errors carry file:line, and any
// accepted ACL answers checks without panicking.
func FuzzParseACL(f *testing.F) {
	f.Add([]byte(testACL), "a/b", "user", "id")
	f.Add([]byte("topic read\nuser x\npattern deny %c/%u/#\n"), "$SYS/x", "x", "c")
	f.Add([]byte("topic reed a\n"), "#", "", "")
	f.Fuzz(func(t *testing.T, data []byte, topic, user, id string) {
		acl, err := ParseACL("fuzz", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz:") {
				t.Fatalf("error without file:line: %v", err)
			}
			return
		}
		for _, c := range []Client{{ID: id, Username: user}, {ID: id, Anonymous: true}} {
			for _, a := range []Access{Read, Write} {
				acl.Check(c, topic, a)
			}
			if validFilter(topic) == nil {
				acl.Check(c, topic, Subscribe)
			}
		}
	})
}
