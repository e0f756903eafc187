package auth

import (
	"fmt"
	"strings"
	"testing"
)

// TestUnknownUserHashCost (issue 20, low): in a file that mixes $6$, $7$
// at two iteration counts and argon2id, an unknown user name is checked
// against a hash of one of the file's own kinds and costs, always the same
// one for the same name, and every kind is used for some names — so the
// time a refusal takes does not set unknown names apart from real ones.
// (The old code checked every unknown name against the first user's kind,
// so the argon2id users stood out.)
func TestUnknownUserHashCost(t *testing.T) {
	var lines []string
	for i, spec := range []struct {
		typ  HashType
		iter int
	}{{SHA512, 0}, {SHA512PBKDF2, 101}, {SHA512PBKDF2, 1000}, {Argon2id, 0}, {SHA512PBKDF2, 1000}} {
		h, err := NewHash(spec.typ, "pw", spec.iter)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, fmt.Sprintf("user%d:%s", i, h))
	}
	pf, err := ParsePasswordFile("mixed", []byte(strings.Join(lines, "\n")+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(pf.dummies) != 4 || pf.total != 5 {
		t.Fatalf("%d distinct costs over %d users, want 4 over 5", len(pf.dummies), pf.total)
	}
	used := map[*hash]int{}
	for i := range 400 {
		name := fmt.Sprintf("nobody-%d", i)
		d := pf.dummyFor(name)
		if pf.dummyFor(name) != d {
			t.Fatalf("%s got two different dummies", name)
		}
		known := false
		for _, e := range pf.users {
			known = known || sameCost(e.h, d)
		}
		if !known {
			t.Fatalf("%s is checked against a kind/cost no user has: %+v", name, d)
		}
		used[d]++
	}
	for _, d := range pf.dummies {
		if used[d] == 0 {
			t.Errorf("no unknown name is checked like the users of %v (iterations %d)", d.typ, d.iterations)
		}
	}
	// The two users at 1000 iterations make that cost the likeliest.
	for _, d := range pf.dummies {
		if d.typ == SHA512PBKDF2 && d.iterations == 1000 {
			for _, o := range pf.dummies {
				if o != d && used[o] >= used[d] {
					t.Errorf("cost shared by two users chosen %d times, one of one user %d times", used[d], used[o])
				}
			}
		}
	}
	if pf.Check("nobody-1", "pw") || !pf.Check("user1", "pw") {
		t.Error("Check answers wrongly")
	}
}
