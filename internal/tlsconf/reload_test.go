package tlsconf

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mamori-mqtt/mamori/internal/tlsprobe/probetest"
)

// busyWriter rewrites path about ten times a second until the test ends,
// as a log or a subscriber's output file does; each write is an event in
// the directory. The writer is stopped and waited for at cleanup.
func busyWriter(t *testing.T, path string, content func(i int) []byte) {
	t.Helper()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			_ = os.WriteFile(path, content(i), 0o600)
		}
	}()
	t.Cleanup(func() {
		close(stop)
		wg.Wait()
	})
}

// TestBusyDirReloadBounded (issue 20, item 6): a file written ten times a
// second next to the CRL must not postpone a revocation: events on other
// names do not count, and even events on a watched file (rewritten
// unchanged, over and over) delay a reload by at most maxReloadDelay. The
// default Debounce (500 ms) is used, which the writes used to keep
// resetting forever.
func TestBusyDirReloadBounded(t *testing.T) {
	p := probetest.NewPKI(t)
	for _, tc := range []struct {
		name string
		busy func(dir string) (string, func(int) []byte)
	}{
		{"a log file next to the CRL", func(dir string) (string, func(int) []byte) {
			return filepath.Join(dir, "output.log"), func(i int) []byte { return []byte(strings.Repeat("line\n", i+1)) }
		}},
		{"the watched cafile rewritten unchanged", func(dir string) (string, func(int) []byte) {
			ca, err := os.ReadFile(p.Path("ca1.crt"))
			if err != nil {
				t.Fatal(err)
			}
			return filepath.Join(dir, "ca1.crt"), func(int) []byte { return ca }
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			crl := filepath.Join(dir, "ca1.crl")
			writeFile(t, crl, makeCRL(t, p, 1, time.Now().Add(time.Hour)))
			copyFile(t, p.Path("ca1.crt"), filepath.Join(dir, "ca1.crt"))
			ts := startServer(t, parseListener(t, "certfile "+p.Path("server1.crt"), "keyfile "+p.Path("server1.key"),
				"cafile "+filepath.Join(dir, "ca1.crt"), "require_certificate true", "crlfile "+crl),
				func(o *Options) { o.Debounce = DefaultDebounce })
			cfg := clientConfig(t, p, "mqtt.local", "device1.crt", "device1.key")
			open, err := dial(t, ts.addr, cfg)
			if err != nil {
				t.Fatal(err)
			}
			path, content := tc.busy(dir)
			busyWriter(t, path, content)

			writeFile(t, crl, makeCRL(t, p, 2, time.Now().Add(time.Hour), p.Cert(t, "device1.crt")))
			// waitLog's deadline (10 s) is generous: this is not a timing
			// test, only "it happens while the writer keeps writing".
			ts.log.waitLog(t, "closing client")
			_ = open.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := open.Read(make([]byte, 1)); err == nil {
				t.Error("the revoked client's connection is still open")
			}
			if _, err := dial(t, ts.addr, cfg); err == nil {
				t.Fatal("revoked client accepted")
			}
		})
	}
}

// TestFailedReloadLoggedOnce (issue 20, item 6): with the log file in the
// watched directory, a CRL that cannot be read is reported once — not once
// per event, each report being the event that triggers the next — and not
// again on each SIGHUP while nothing changed.
func TestFailedReloadLoggedOnce(t *testing.T) {
	p := probetest.NewPKI(t)
	dir := t.TempDir()
	crl := filepath.Join(dir, "ca1.crl")
	writeFile(t, crl, makeCRL(t, p, 1, time.Now().Add(time.Hour)))
	logPath := filepath.Join(dir, "broker.log")
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lf.Close() })
	ts := startServer(t, parseListener(t, "certfile "+p.Path("server1.crt"), "keyfile "+p.Path("server1.key"),
		"cafile "+p.Path("ca1.crt"), "require_certificate true", "crlfile "+crl),
		func(o *Options) { o.Log = slog.New(slog.NewTextHandler(lf, nil)) })
	if err := os.Remove(crl); err != nil {
		t.Fatal(err)
	}
	const failed = "keeping the previous version in service"
	logText := func() string {
		b, err := os.ReadFile(logPath)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	waitFile(t, logPath, failed)
	// SIGHUP twice while the file is still missing: nothing new to say.
	ts.Reload()
	ts.Reload()
	writeFile(t, crl, makeCRL(t, p, 2, time.Now().Add(time.Hour)))
	waitFile(t, logPath, "reloaded crlfile")
	if n := strings.Count(logText(), failed); n != 1 {
		t.Errorf("the failed reload was logged %d times, want once:\n%s", n, logText())
	}
}

// waitFile waits until the file at path contains s.
func waitFile(t *testing.T, path, s string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if strings.Contains(string(b), s) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has no %q:\n%s", path, s, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestOCSPNotRefetchedOnReload (issue 20, item 6): a reload that changed no
// certificate does not wake the OCSP loop, and when certificates did
// change, only those without a response are fetched; the periodic refresh
// still fetches every one.
func TestOCSPNotRefetchedOnReload(t *testing.T) {
	op := newOCSPPKI(t)
	l := parseListener(t, "certfile "+filepath.Join(op.dir, "server.crt"), "keyfile "+filepath.Join(op.dir, "server.key"),
		"ocsp_stapling true")
	srv, err := New(Options{Listener: l})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	// Not started: the OCSP loop does not run, so its wake-ups stay queued
	// where the test can see them, and fetches happen only when called.
	srv.refreshStaples(t.Context(), false)
	if n := op.fetches.Load(); n != 1 {
		t.Fatalf("first refresh asked the responder %d times, want 1", n)
	}
	srv.Reload()
	srv.Reload()
	if len(srv.resyncOCSP) != 0 {
		t.Error("a reload that changed nothing asks for new OCSP responses")
	}
	srv.refreshStaples(t.Context(), true)
	if n := op.fetches.Load(); n != 1 {
		t.Errorf("a refresh for new certificates asked again for one that has its response (%d requests)", n)
	}
	srv.refreshStaples(t.Context(), false)
	if n := op.fetches.Load(); n != 2 {
		t.Errorf("the periodic refresh asked %d times in all, want 2", n)
	}

	// A new certificate in place of the old one does wake the loop.
	p := probetest.NewPKI(t)
	dir := t.TempDir()
	copyFile(t, p.Path("server1.crt"), filepath.Join(dir, "server.crt"))
	copyFile(t, p.Path("server1.key"), filepath.Join(dir, "server.key"))
	srv2, err := New(Options{Listener: parseListener(t, "certfile "+filepath.Join(dir, "server.crt"), "keyfile "+filepath.Join(dir, "server.key"))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv2.Close() })
	srv2.Reload()
	if len(srv2.resyncOCSP) != 0 {
		t.Error("an unchanged reload woke the OCSP loop")
	}
	copyFile(t, p.Path("server2.crt"), filepath.Join(dir, "server.crt"))
	copyFile(t, p.Path("server2.key"), filepath.Join(dir, "server.key"))
	srv2.Reload()
	if len(srv2.resyncOCSP) != 1 {
		t.Error("a new certificate did not wake the OCSP loop")
	}
}
