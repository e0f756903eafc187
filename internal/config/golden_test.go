package config

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// TestGolden loads every testdata/*.conf and compares the result, printed by
// render, with testdata/*.golden. Run `go test ./internal/config -update`
// after an intended change and review the diff.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.conf")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no testdata/*.conf")
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".conf")
		t.Run(name, func(t *testing.T) {
			got := render(Load(f))
			golden := strings.TrimSuffix(f, ".conf") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("%s differs from %s (run with -update and review the diff):\n%s", f, golden, lineDiff(string(want), got))
			}
		})
	}
}

// render prints a load result in a stable form: the error text, or the
// warnings and then the configuration as JSON with zero values left out
// (so a golden file shows what the input set, plus non-zero defaults) and
// each File or Value shown as "value @ file:line:col".
func render(c *Config, err error) string {
	if err != nil {
		return "ERROR\n" + err.Error() + "\n"
	}
	var b strings.Builder
	b.WriteString("WARNINGS\n")
	for _, w := range c.Warnings {
		b.WriteString(w.String() + "\n")
	}
	b.WriteString("CONFIG\n")
	c2 := *c
	c2.Warnings = nil
	raw, err := json.Marshal(&c2)
	if err != nil {
		return "MARSHAL " + err.Error()
	}
	var tree any
	if err := json.Unmarshal(raw, &tree); err != nil {
		return "UNMARSHAL " + err.Error()
	}
	js, err := json.MarshalIndent(compact(tree), "", "  ")
	if err != nil {
		return "MARSHAL " + err.Error()
	}
	b.Write(js)
	b.WriteByte('\n')
	return b.String()
}

func compact(v any) any {
	switch x := v.(type) {
	case map[string]any:
		if p, ok := x["Pos"].(string); ok && len(x) == 2 {
			for _, k := range []string{"Path", "Text"} {
				if s, ok := x[k].(string); ok {
					if s == "" {
						return nil
					}
					return s + " @ " + p
				}
			}
		}
		out := map[string]any{}
		for k, e := range x {
			// AllowAnonymous is a *bool: false differs from unset.
			if e = compact(e); !isZero(e) || (k == "AllowAnonymous" && e != nil) {
				out[k] = e
			}
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = compact(e)
		}
		return out
	}
	return v
}

func isZero(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case bool:
		return !x
	case float64:
		return x == 0
	case map[string]any:
		return len(x) == 0
	case []any:
		return len(x) == 0
	}
	return false
}

// lineDiff shows the first lines where want and got differ.
func lineDiff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; i < max(len(wl), len(gl)) && shown < 20; i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			fmt.Fprintf(&b, "line %d:\n  want: %s\n  got:  %s\n", i+1, w, g)
			shown++
		}
	}
	return b.String()
}
