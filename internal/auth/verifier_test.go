package auth

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

func testFile(t testing.TB, iterations int, users ...string) *PasswordFile {
	t.Helper()
	var b strings.Builder
	for _, u := range users {
		h, err := NewHash(SHA512PBKDF2, "pw-"+u, iterations)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s:%s\n", u, h)
	}
	pf, err := ParsePasswordFile("mem", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return pf
}

func TestVerifierCache(t *testing.T) {
	pf := testFile(t, 100, "a", "b")
	v := NewVerifier(10)
	if !v.Check(pf, "a", "pw-a") || v.Len() != 1 {
		t.Fatal("first check failed or not cached")
	}
	if !v.Check(pf, "a", "pw-a") || v.Len() != 1 {
		t.Fatal("cached check failed")
	}
	if v.Check(pf, "a", "wrong") || v.Check(pf, "zz", "pw-a") || v.Len() != 1 {
		t.Fatal("failure accepted or cached")
	}
	// A reload that changes a's line must not accept the old password.
	h, _ := NewHash(SHA512PBKDF2, "new", 100)
	pf2, _ := ParsePasswordFile("mem", []byte("a:"+h+"\n"))
	if v.Check(pf2, "a", "pw-a") {
		t.Fatal("old password accepted after the line changed")
	}
	if !v.Check(pf2, "a", "new") {
		t.Fatal("new password refused")
	}
}

func TestVerifierBounded(t *testing.T) {
	users := make([]string, 20)
	for i := range users {
		users[i] = fmt.Sprint("u", i)
	}
	pf := testFile(t, 1, users...)
	v := NewVerifier(5)
	for _, u := range users {
		v.Check(pf, u, "pw-"+u)
	}
	if v.Len() != 5 {
		t.Errorf("Len = %d, want 5", v.Len())
	}
}

func TestVerifierConcurrent(t *testing.T) {
	pf := testFile(t, 1000, "a", "b")
	v := NewVerifier(0)
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for i := range 64 {
		wg.Go(func() {
			u := []string{"a", "b"}[i%2]
			if !v.Check(pf, u, "pw-"+u) {
				errs <- "valid password refused"
			}
			if v.Check(pf, u, "bad") {
				errs <- "bad password accepted"
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// BenchmarkVerify measures one verification per hash type; "$7$" is at
// DefaultIterations, the cost mamori passwd writes (go test -bench 'Verify/\$7\$').
func BenchmarkVerify(b *testing.B) {
	cases := []struct {
		name string
		typ  HashType
		it   int
	}{
		{"$6$", SHA512, 0},
		{"$7$-101-mosquitto-default", SHA512PBKDF2, 101},
		{fmt.Sprintf("$7$-%d-mamori-default", DefaultIterations), SHA512PBKDF2, DefaultIterations},
		{"$argon2id$-mosquitto-2.1-params", Argon2id, 0},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			enc, err := NewHash(c.typ, "pw", c.it)
			if err != nil {
				b.Fatal(err)
			}
			pf, _ := ParsePasswordFile("mem", []byte("u:"+enc))
			for b.Loop() {
				if !pf.Check("u", "pw") {
					b.Fatal("refused")
				}
			}
		})
	}
}

// BenchmarkReconnectStorm: 200 valid clients reconnect at once, over and
// over. "cold" is what every storm costs without the cache (each CONNECT
// runs PBKDF2), "cached" what it costs once the credentials are known.
// Reported per storm.
func BenchmarkReconnectStorm(b *testing.B) {
	const clients = 200
	users := make([]string, clients)
	for i := range users {
		users[i] = fmt.Sprint("dev", i)
	}
	pf := testFile(b, DefaultIterations, users...)
	storm := func(check func(u string) bool) {
		var wg sync.WaitGroup
		for _, u := range users {
			wg.Go(func() {
				if !check(u) {
					panic("refused")
				}
			})
		}
		wg.Wait()
	}
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			storm(func(u string) bool { return pf.Check(u, "pw-"+u) })
		}
	})
	b.Run("cached", func(b *testing.B) {
		v := NewVerifier(0)
		storm(func(u string) bool { return v.Check(pf, u, "pw-"+u) })
		b.ResetTimer()
		for b.Loop() {
			storm(func(u string) bool { return v.Check(pf, u, "pw-"+u) })
		}
	})
}
