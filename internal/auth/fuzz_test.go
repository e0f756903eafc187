package auth

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
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

// FuzzParsePSKFile: the parser never panics and its errors carry file:line.
func FuzzParsePSKFile(f *testing.F) {
	f.Add([]byte("device1:0123456789abcdef\n# c\n\ndevice2:DEADBEEF\n"))
	f.Add([]byte("x:zz\n:\nnocolon\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := ParsePSKFile("fuzz", data); err != nil && !strings.HasPrefix(err.Error(), "fuzz:") {
			t.Fatalf("error without file:line: %v", err)
		}
	})
}

// FuzzCertUsername: a client certificate's subject comes from the network;
// whatever DER it holds, deriving a user name never panics, and a name it
// returns has no NUL byte (it becomes an ACL user).
func FuzzCertUsername(f *testing.F) {
	for _, subj := range [][]byte{
		mustSubject(f, pkix.Name{CommonName: "dev1", Organization: []string{"Acme"}, Country: []string{"JP"}}),
		mustSubject(f, pkix.Name{CommonName: "a+b,c=\"d\"", ExtraNames: []pkix.AttributeTypeAndValue{{Type: []int{1, 2, 3, 4}, Value: "x"}}}),
		{0x30, 0x00},
		{0x30, 0x03, 0x31, 0x01, 0x30},
	} {
		f.Add(subj)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		cert := &x509.Certificate{RawSubject: raw}
		for _, useSubject := range []bool{false, true} {
			name, err := CertUsername(cert, useSubject)
			if err == nil && strings.IndexByte(name, 0) >= 0 {
				t.Fatalf("user name with NUL from %x: %q", raw, name)
			}
		}
	})
}

func mustSubject(f *testing.F, n pkix.Name) []byte {
	der, err := asn1.Marshal(n.ToRDNSequence())
	if err != nil {
		f.Fatal(err)
	}
	return der
}
