package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that no input panics the parser, that every error names
// a line of the input, and that a configuration that loads is stable: it
// validates again and does not differ from itself.
// The committed corpus is in testdata/fuzz/FuzzParse; the golden inputs are
// added as seeds too.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.conf")
	for _, name := range files {
		if data, err := os.ReadFile(name); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.conf", data)
		if err != nil {
			var errs Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("error is not a non-empty Errors: %#v", err)
			}
			for _, e := range errs {
				if e.Pos.File != "fuzz.conf" || e.Pos.Line < 1 || e.Pos.Col < 1 {
					t.Fatalf("error without a position: %q", e)
				}
			}
			return
		}
		for _, w := range c.Warnings {
			if w.Pos.File != "fuzz.conf" {
				t.Fatalf("warning without a file: %q", w)
			}
		}
		if _, err := Validate(c); err != nil {
			t.Fatalf("a loaded configuration fails validation: %v", err)
		}
		if d := Diff(c, c); !d.Empty() {
			t.Fatalf("a configuration differs from itself: %v", d.Changes)
		}
	})
}
