package brokercmd

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mamori-mqtt/mamori/internal/brokertest"
)

// unprivileged returns an existing unprivileged account for tests that
// start the broker as root with `user`: mosquitto (Mosquitto's), else
// nobody. The test is skipped when not run as root.
func unprivileged(t *testing.T) *user.User {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the broker drops privileges only when started as root")
	}
	for _, name := range []string{"mosquitto", "nobody"} {
		if u, err := user.Lookup(name); err == nil {
			return u
		}
	}
	t.Skip("no mosquitto or nobody account")
	return nil
}

// openDir returns a new directory that every user can search, like
// /etc/mosquitto: t.TempDir() and the directory above it are private to
// the test's user (root here).
func openDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "etc")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{filepath.Dir(dir), filepath.Dir(filepath.Dir(dir))} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// mamori runs `mamori` with args, run to its end; it fails the test on error.
func mamori(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(mamoriBin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("mamori %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// uidOf returns the real, effective and saved user ids of a process.
func uidOf(t *testing.T, pid int) []string {
	t.Helper()
	for _, l := range strings.Split(string(mustRead(t, fmt.Sprintf("/proc/%d/status", pid))), "\n") {
		if strings.HasPrefix(l, "Uid:") {
			return strings.Fields(l)[1:4]
		}
	}
	t.Fatal("no Uid line")
	return nil
}

// TestRereadableFilesAfterDrop (issue 20, item 5): started as root with
// `user mosquitto`, the broker re-reads its files as mosquitto. Files only
// root can read (a 0600 password file, ACL file and CRL) would make every
// later reload fail while the old version — revocations missing — stays in
// force, so the start is refused, naming each file, the user and the fix.
// With the layout `mamori ca` makes, the same broker, running as
// mosquitto, re-reads crl.pem after `mamori ca revoke` and cuts the revoked
// client off.
func TestRereadableFilesAfterDrop(t *testing.T) {
	brokertest.RequireTools(t, "mosquitto_pub", "mosquitto_sub", "stdbuf")
	u := unprivileged(t)
	dir := openDir(t)
	caDir := filepath.Join(dir, "ca")
	ca := func(args ...string) string {
		return mamori(t, append(append([]string{"ca"}, args...), "--dir", caDir)...)
	}
	ca("init", "--cn", "Drop CA", "--no-password")
	out := ca("issue", "server", "--dns", "localhost", "--ip", "127.0.0.1")
	ca("issue", "client", "--cn", "dev1")
	issued := func(name string) string { return filepath.Join(caDir, "issued", name) }
	// What `mamori ca issue server` tells the operator to do for a broker
	// that runs as its own user.
	if !strings.Contains(out, "chgrp mosquitto "+issued("localhost.key")) {
		t.Fatalf("issue server does not say how the broker's user reads the key:\n%s", out)
	}
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(issued("localhost.key"), 0, gid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(issued("localhost.key"), 0o640); err != nil {
		t.Fatal(err)
	}
	tlsLines := func(port int, crl string) string {
		return fmt.Sprintf("user %s\nlistener %d 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate true\nuse_identity_as_username true\ncrlfile %s\n",
			u.Username, port, filepath.Join(caDir, "ca.crt"), issued("localhost-chain.crt"), issued("localhost.key"), crl)
	}

	t.Run("root-only files refuse the start", func(t *testing.T) {
		private := func(name, text string) string {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}
		pw := filepath.Join(dir, "passwd")
		mamori(t, "passwd", "-c", "-b", pw, "alice", "secret")
		if err := os.Chmod(pw, 0o600); err != nil {
			t.Fatal(err)
		}
		acl := private("acl", "topic readwrite #\n")
		crl := private("crl.pem", string(mustRead(t, filepath.Join(caDir, "crl.pem"))))
		conf := private("refused.conf", tlsLines(freePort(t, "127.0.0.1"), crl)+
			fmt.Sprintf("password_file %s\nacl_file %s\n", pw, acl))
		if err := os.Chmod(conf, 0o644); err != nil {
			t.Fatal(err)
		}
		p := startProc(t, "mamori broker (refused)", []string{mamoriBin, "broker", "-c", conf}, brokertest.BrokerEnv(dir)...)
		if err := p.Wait(); err == nil || p.HasLine(" running") {
			t.Fatalf("the broker started with files its user cannot read (%v):\n%s", err, p.Output())
		}
		for _, want := range []string{
			"refused.conf:8: crlfile " + crl + `: user "` + u.Username + `" cannot read it`,
			"refused.conf:9: password_file " + pw + `: user "` + u.Username + `" cannot read it`,
			"refused.conf:10: acl_file " + acl + `: user "` + u.Username + `" cannot read it`,
			"Fix: chgrp ",
		} {
			if !p.HasLine(want) {
				t.Errorf("the refusal does not say %q:\n%s", want, p.Output())
			}
		}
	})

	t.Run("mamori ca layout: revocation reloaded as the broker's user", func(t *testing.T) {
		b := brokertest.StartBroker(t, brokertest.BrokerConfig{Bin: mamoriBin, Dir: dir, Args: []string{"-v"},
			Conf: func(port int) string { return tlsLines(port, filepath.Join(caDir, "crl.pem")) }})
		if ids := uidOf(t, b.Pid()); ids[0] != u.Uid || ids[1] != u.Uid || ids[2] != u.Uid {
			t.Fatalf("broker runs as uids %v, want %s", ids, u.Uid)
		}
		tlsArgs := []string{"-h", "localhost", "-p", b.PortString(), "--cafile", filepath.Join(caDir, "ca.crt"),
			"--cert", issued("dev1.crt"), "--key", issued("dev1.key")}
		sub := mosquittoSub(t, append(tlsArgs, "-i", "dev1-sub", "-t", "drop/#", "-v")...)
		mosquittoPub(t, append(tlsArgs, "-i", "dev1-pub", "-t", "drop/1", "-m", "before")...)
		sub.WaitLine("drop/1 before")

		ca("revoke", "dev1")
		b.WaitLine("closed 1 connection(s) whose client certificate is now revoked")
		b.WaitLine("Client dev1-sub closed its connection")
		if b.HasLine("permission denied") {
			t.Errorf("the broker could not re-read a file:\n%s", b.Output())
		}
		p := startProc(t, "mosquitto_pub (revoked)", append([]string{"mosquitto_pub"}, append(tlsArgs, "-i", "dev1-again", "-t", "drop/2", "-m", "after")...))
		if err := p.Wait(); err == nil {
			t.Fatal("the revoked client connected again")
		}
		b.WaitLine(": revoked: client certificate CN=dev1")
	})
}

// TestUnixSocketAfterDrop (issue 20, low): a broker that drops to its
// `user` can no longer remove its unix socket at exit when the socket's
// directory is root's. It says so at start and at exit, instead of
// silently leaving the file behind; the next start removes the stale
// socket and runs.
func TestUnixSocketAfterDrop(t *testing.T) {
	brokertest.RequireTools(t, "mosquitto_pub")
	u := unprivileged(t)
	dir := openDir(t) // root's, 0755: searchable, not writable by u
	sock := filepath.Join(dir, "mqtt.sock")
	conf := func(port int) string {
		return fmt.Sprintf("user %s\nlistener %d 127.0.0.1\nlistener 0 %s\nallow_anonymous true\n", u.Username, port, sock)
	}
	b := brokertest.StartBroker(t, brokertest.BrokerConfig{Bin: mamoriBin, Dir: dir, Conf: conf})
	b.WaitLine("Warning: unix socket " + sock + `: the broker runs as "` + u.Username + `" and will not be able to remove it at exit`)
	mosquittoPub(t, "--unix", sock, "-t", "u/drop", "-m", "over the socket")
	b.Stop(true)
	if err := b.Wait(); err != nil {
		t.Fatalf("broker exit: %v", err)
	}
	if !b.HasLine("Warning: cannot remove the unix socket " + sock + " at exit") {
		t.Errorf("the broker left its socket behind without saying so:\n%s", b.Output())
	}
	if _, err := os.Lstat(sock); err != nil {
		t.Fatalf("the socket file should still be there (only root can remove it): %v", err)
	}

	// As root, with a directory the user may write, nothing is left.
	if err := os.Chown(dir, mustAtoi(t, u.Uid), -1); err != nil {
		t.Fatal(err)
	}
	b2 := brokertest.StartBroker(t, brokertest.BrokerConfig{Bin: mamoriBin, Dir: dir, Conf: conf})
	mosquittoPub(t, "--unix", sock, "-t", "u/drop", "-m", "again")
	b2.Stop(true)
	if err := b2.Wait(); err != nil {
		t.Fatalf("broker exit: %v", err)
	}
	if b2.HasLine("remove the unix socket") || b2.HasLine("will not be able to remove") {
		t.Errorf("warned although the user may remove the socket:\n%s", b2.Output())
	}
	if _, err := os.Lstat(sock); err == nil {
		t.Error("the socket file was left behind")
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestBrokerLogLoopBounded (issue 20, item 6), as the issue saw it: the
// broker runs as mosquitto and logs to a file in the directory it watches
// for crl.pem. A new crl.pem it cannot read is reported once; before, each
// report was an event in that directory that made the next reload fail and
// report again, without end. A SIGHUP, which re-reads the TLS files too,
// adds no report either while nothing changed.
func TestBrokerLogLoopBounded(t *testing.T) {
	u := unprivileged(t)
	dir := openDir(t)
	caDir := filepath.Join(dir, "ca")
	ca := func(args ...string) string {
		return mamori(t, append(append([]string{"ca"}, args...), "--dir", caDir)...)
	}
	ca("init", "--cn", "Loop CA", "--no-password")
	ca("issue", "server", "--dns", "localhost", "--ip", "127.0.0.1")
	issued := func(name string) string { return filepath.Join(caDir, "issued", name) }
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(issued("localhost.key"), 0, gid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(issued("localhost.key"), 0o640); err != nil {
		t.Fatal(err)
	}
	crl := filepath.Join(caDir, "crl.pem")
	logFile := filepath.Join(caDir, "broker.log")
	b := brokertest.StartBroker(t, brokertest.BrokerConfig{Bin: mamoriBin, Dir: dir, DialReady: true,
		Conf: func(port int) string {
			return fmt.Sprintf("user %s\nlog_dest file %s\nlog_type all\nlistener %d 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate true\ncrlfile %s\n",
				u.Username, logFile, port, filepath.Join(caDir, "ca.crt"), issued("localhost-chain.crt"), issued("localhost.key"), crl)
		}})
	logText := func() string { return string(mustRead(t, logFile)) }
	waitLog := func(s string) {
		t.Helper()
		// The broker writes to the file, not to its output: poll it.
		deadline := time.Now().Add(awaitTimeout)
		for !strings.Contains(logText(), s) {
			if time.Now().After(deadline) || b.Exited() {
				t.Fatalf("%s has no %q:\n%s", logFile, s, logText())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitLog(" running")

	// A new CRL only root can read, swapped in atomically.
	tmp := filepath.Join(caDir, ".crl.tmp")
	if err := os.WriteFile(tmp, mustRead(t, crl), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, crl); err != nil {
		t.Fatal(err)
	}
	const failed = "keeping the previous version in service"
	waitLog(failed)
	b.Signal(syscall.SIGHUP)
	waitLog("Reload: password, ACL and PSK files re-read")
	if n := strings.Count(logText(), failed); n != 1 {
		t.Errorf("the unreadable CRL was reported %d times, want once:\n%s", n, logText())
	}
	if !strings.Contains(logText(), "permission denied") {
		t.Errorf("the report does not say why:\n%s", logText())
	}
}
