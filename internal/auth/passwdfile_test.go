package auth

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// mosquittoPasswd returns the path of Debian's mosquitto_passwd or skips.
func mosquittoPasswd(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("mosquitto_passwd")
	if err != nil {
		t.Skip("mosquitto_passwd not installed (apt-get install mosquitto); skipping interop vectors")
	}
	return p
}

// TestMosquittoPasswdVectors reads a file written by the real
// mosquitto_passwd with each of its hash types.
func TestMosquittoPasswdVectors(t *testing.T) {
	bin := mosquittoPasswd(t)
	file := filepath.Join(t.TempDir(), "pw")
	users := []struct {
		args     []string
		user, pw string
		prefix   string
	}{
		{[]string{"-c", "-b"}, "alice", "s3cret", "$7$101$"},
		{[]string{"-H", "sha512", "-b"}, "bob", "pässwörd with spaces", "$6$"},
		{[]string{"-H", "sha512-pbkdf2", "-I", "1000", "-b"}, "carol", "x", "$7$1000$"},
	}
	for _, u := range users {
		args := append(u.args, file, u.user, u.pw)
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd %v: %v\n%s", args, err, out)
		}
	}
	data, _ := os.ReadFile(file)
	pf, err := LoadPasswordFile(file)
	if err != nil {
		t.Fatalf("LoadPasswordFile: %v\n%s", err, data)
	}
	for _, u := range users {
		if !strings.Contains(string(data), u.user+":"+u.prefix) {
			t.Errorf("file has no %s line with prefix %s:\n%s", u.user, u.prefix, data)
		}
		if !pf.Check(u.user, u.pw) {
			t.Errorf("Check(%q, correct password) = false", u.user)
		}
		if pf.Check(u.user, u.pw+"x") {
			t.Errorf("Check(%q, wrong password) = true", u.user)
		}
		if !pf.Has(u.user) {
			t.Errorf("Has(%q) = false", u.user)
		}
	}
	if pf.Check("nobody", "s3cret") || pf.Has("nobody") {
		t.Error("unknown user accepted")
	}
}

func TestNewHashRoundTrip(t *testing.T) {
	for _, typ := range []HashType{SHA512, SHA512PBKDF2, Argon2id} {
		t.Run(typ.String(), func(t *testing.T) {
			enc, err := NewHash(typ, "pw", 50)
			if err != nil {
				t.Fatal(err)
			}
			pf, err := ParsePasswordFile("mem", []byte("u:"+enc+"\n"))
			if err != nil {
				t.Fatal(err)
			}
			if !pf.Check("u", "pw") || pf.Check("u", "pW") {
				t.Error("round trip failed")
			}
			if typ == SHA512PBKDF2 && !strings.HasPrefix(enc, "$7$50$") {
				t.Errorf("encoded = %q", enc)
			}
			if typ != Argon2id && len(strings.Split(enc, "$")[len(strings.Split(enc, "$"))-2]) != 16 {
				t.Errorf("salt is not 12 bytes (16 base64 characters): %q", enc)
			}
		})
	}
}

// TestArgon2idVector checks a fixed PHC string (password "mySuperPass") so
// a change in parameter handling is caught.
func TestArgon2idVector(t *testing.T) {
	const line = "u:$argon2id$v=19$m=3906,t=4,p=1$ejcSAnKlTR6fhI0SRV7cUw$6EvE9S1qgsA8PoS96uZzuBGZZWCaeK91CHdHHYzn/mA"
	pf, err := ParsePasswordFile("mem", []byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if !pf.Check("u", "mySuperPass") || pf.Check("u", "mySuperPas") {
		t.Error("argon2id vector not verified")
	}
}

func TestPasswordFileErrors(t *testing.T) {
	const good = "$7$101$D8mj9xbJRyJsBdhF$ACE1PRcFrp8tvukUUl5JaP7bwD4XZNRA7bErBNYv6JdiLBPRkAqQ8RhMSIwhntMTLCl4Xfp7hFr8eL28Hv5Dxg=="
	tests := []struct {
		name, data, want string
	}{
		{"plain text password", "# c\n\nbob:hunter2\n", "pw:3: user \"bob\": not a password hash"},
		{"no colon", "bobhunter2\n", "pw:1: expected username:hash"},
		{"empty user", ":" + good, "pw:1: empty username"},
		{"no hash", "bob:\n", "pw:1: user \"bob\": no password hash"},
		{"extra colon", "bob:" + good + ":x", "more than one ':'"},
		{"duplicate", "bob:" + good + "\nbob:" + good, "pw:2: user \"bob\" is already defined at line 1"},
		{"unknown type", "bob:$5$abc$def", "unknown hash type"},
		{"bad iterations", "bob:$7$10x$D8mj9xbJRyJsBdhF$" + good[24:], "iteration count"},
		{"zero iterations", "bob:$7$0$D8mj9xbJRyJsBdhF$" + good[24:], "iteration count"},
		{"short salt", "bob:$7$101$D8mj9xbJ$" + good[24:], "salt must be 12 or 64 bytes"},
		{"short hash", "bob:$7$101$D8mj9xbJRyJsBdhF$ACE1", "hash must be 64 bytes"},
		{"6 parts", "bob:$6$D8mj9xbJRyJsBdhF", "$6$ hash must be"},
		{"argon2 version", "bob:$argon2id$v=16$m=64,t=1,p=1$c29tZXNhbHQ$c29tZXNhbHQ", "version 19"},
		{"argon2 memory", "bob:$argon2id$v=19$m=99999999,t=1,p=1$c29tZXNhbHQ$c29tZXNhbHQ", "m must be"},
		{"bad utf8 user", "\xff:" + good, "not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A malformed line is left out and reported (the user cannot
			// log in), as Mosquitto loads such a file; a user defined
			// twice fails the load.
			pf, err := ParsePasswordFile("pw", []byte(tt.data+"\nok:"+good+"\n"))
			if err == nil && tt.name == "duplicate" {
				t.Fatal("a duplicate user did not fail the load")
			}
			if err == nil {
				if len(pf.Skipped()) != 1 {
					t.Fatalf("skipped %v, want one line", pf.Skipped())
				}
				err = pf.Skipped()[0]
				if pf.Len() != 1 {
					t.Fatalf("%d users loaded, want the valid one after the skipped line", pf.Len())
				}
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
			var pe *ParseError
			if !errors.As(err, &pe) || pe.File != "pw" || pe.Line < 1 {
				t.Errorf("not a *ParseError with file and line: %#v", err)
			}
			if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "ACE1") {
				t.Errorf("error leaks the password field: %v", err)
			}
		})
	}
}

func TestPasswordFileAccepts(t *testing.T) {
	enc, _ := NewHash(SHA512PBKDF2, "pw", 10)
	data := "# comment\n\n  spaced user  :  " + enc + "  \r\nu2:" + enc + "\n"
	pf, err := ParsePasswordFile("pw", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	if pf.Len() != 2 || !pf.Check("spaced user", "pw") {
		t.Errorf("blanks around fields not trimmed as Mosquitto does")
	}
	empty, err := ParsePasswordFile("pw", nil)
	if err != nil || empty.Len() != 0 || empty.Check("x", "y") {
		t.Errorf("empty file: %v", err)
	}
}

func TestLoadPasswordFileMissing(t *testing.T) {
	_, err := LoadPasswordFile(filepath.Join(t.TempDir(), "nope"))
	if err == nil || !strings.Contains(err.Error(), "password_file") {
		t.Fatalf("err = %v", err)
	}
}
