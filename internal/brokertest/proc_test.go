package brokertest

import (
	"strings"
	"sync"
	"testing"
	"time"
)

func TestProcLines(t *testing.T) {
	var mu sync.Mutex
	var stdout []string
	p := Start(t, "sh", []string{"sh", "-c", `echo one; echo two >&2; printf 'one\r\n'; echo "$X"; printf tail`},
		Env("X=from env"), OnLine(func(line string, out bool) {
			if out {
				mu.Lock()
				stdout = append(stdout, line)
				mu.Unlock()
			}
		}))
	p.WaitLines("one", 2)
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	if got := p.Count("one"); got != 2 {
		t.Errorf("Count(one) = %d, want 2", got)
	}
	for _, want := range []string{"two", "from env", "tail"} {
		if !p.HasLine(want) {
			t.Errorf("no line %q in %q", want, p.Lines())
		}
	}
	if out := p.Output(); strings.Contains(out, "\r") || !strings.HasSuffix(out, "tail\n") {
		t.Errorf("Output() = %q", out)
	}
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(stdout, "|"); got != "one|one|from env|tail" {
		t.Errorf("stdout lines %q", got)
	}
}

func TestProcLifetime(t *testing.T) {
	p := Start(t, "sleep", []string{"sleep", "30"}, Lifetime(100*time.Millisecond))
	err := p.Wait()
	if err == nil || !strings.Contains(err.Error(), "killed after 100ms") {
		t.Fatalf("Wait() = %v, want killed after 100ms", err)
	}
}

func TestProcStopGently(t *testing.T) {
	p := Start(t, "sh", []string{"sh", "-c", `trap 'echo bye; exit 0' TERM; echo ready; while :; do sleep 0.05; done`})
	p.WaitLine("ready")
	start := time.Now()
	p.Stop(true)
	if d := time.Since(start); d > StopGrace/2 {
		t.Errorf("Stop took %v", d)
	}
	if !p.HasLine("bye") || p.ExitErr() != nil {
		t.Errorf("exit %v, output %q: the process did not get SIGTERM", p.ExitErr(), p.Lines())
	}
}
