package brokercmd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mamori-mqtt/mamori/internal/brokertest"
	"github.com/mamori-mqtt/mamori/internal/client"
	"github.com/mamori-mqtt/mamori/internal/packet"
)

// TestSIGTERM stops the broker with SIGTERM: MQTT 5 clients get DISCONNECT
// 0x8B (server shutting down), MQTT 3.1.1 clients see the connection close,
// the broker exits 0 and removes its pid_file.
func TestSIGTERM(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "mamori.pid")
	b := startBroker(t, func(port int) string {
		return fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npid_file %s\n", port, pidFile)
	})
	b.WaitLine(" running")
	text, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("pid_file: %v", err)
	}
	if got := strings.TrimSpace(string(text)); got != strconv.Itoa(b.Pid()) {
		t.Fatalf("pid_file holds %q, the broker's pid is %d", got, b.Pid())
	}

	v5 := dial(t, client.Options{Address: b.Addr(), ClientID: "v5"})
	v3 := dial(t, client.Options{Address: b.Addr(), ClientID: "v311", Version: packet.V311})
	b.Signal(syscall.SIGTERM)
	v5.disconnectedWith(packet.ErrServerShuttingDown)
	select {
	case <-v3.Done():
	case <-time.After(awaitTimeout):
		t.Fatal("the MQTT 3.1.1 client is still connected")
	}
	if err := b.Wait(); err != nil {
		t.Fatalf("broker exit: %v", err)
	}
	if !b.HasLine("terminating") {
		t.Errorf("no terminating line")
	}
	if _, err := os.Stat(pidFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pid_file left behind: %v", err)
	}
}

var stampRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d: `)

// TestLogFileTypesAndReload logs to a file with only errors and warnings
// and a strftime timestamp, then enables every type with a SIGHUP.
func TestLogFileTypesAndReload(t *testing.T) {
	logFile := filepath.Join(t.TempDir(), "mamori.log")
	b := startBroker(t, func(port int) string {
		return fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\nlog_dest file %s\nlog_type error\nlog_type warning\n"+
			"log_timestamp_format %%Y-%%m-%%dT%%H:%%M:%%S\n# a warning: this option has no effect in mamori\nwebsockets_log_level 255\n", port, logFile)
	})
	c := dial(t, client.Options{Address: b.Addr(), ClientID: "quiet"})
	c.Disconnect(packet.Success, nil)

	waitFile := func(want string) string {
		t.Helper()
		deadline := time.Now().Add(awaitTimeout)
		for {
			text := string(mustRead(t, logFile))
			if strings.Contains(text, want) {
				return text
			}
			if time.Now().After(deadline) {
				t.Fatalf("log file has no %q:\n%s", want, text)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	text := waitFile("websockets_log_level")
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		if !stampRE.MatchString(line) {
			t.Errorf("line without the configured timestamp: %q", line)
		}
	}
	for _, notice := range []string{"running", "New client connected"} {
		if strings.Contains(text, notice) {
			t.Errorf("log_type error+warning logged a notice line %q:\n%s", notice, text)
		}
	}
	if len(b.Lines()) != 0 {
		t.Errorf("log_dest file only, but the broker wrote to stderr: %q", b.Lines())
	}

	// Reload with every type: connection messages appear.
	conf := strings.Replace(string(mustRead(t, b.Conf)), "log_type warning", "log_type all", 1)
	writeFile(t, b.Conf, conf)
	b.Signal(syscall.SIGHUP)
	waitFile(`log_type: "error,warning" -> "all" (applied)`)
	c = dial(t, client.Options{Address: b.Addr(), ClientID: "after-reload"})
	c.Disconnect(packet.Success, nil)
	waitFile("New client connected from 127.0.0.1")
}

// TestLogTopicAndVerbose publishes log lines to $SYS/broker/log/… and shows
// that -v enables every type whatever log_type says.
func TestLogTopicAndVerbose(t *testing.T) {
	b := startBroker(t, func(port int) string {
		return fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\nlog_dest topic\nlog_dest stderr\nlog_type error\n", port)
	}, "-v")
	watcher := dial(t, client.Options{Address: b.Addr(), ClientID: "watcher"})
	watcher.subscribe("$SYS/broker/log/N")
	dial(t, client.Options{Address: b.Addr(), ClientID: "newcomer"})
	select {
	case m := <-watcher.Messages():
		if m == nil || !strings.Contains(string(m.Payload), "New client connected") || !strings.Contains(string(m.Payload), "newcomer") {
			t.Fatalf("log message %v", m)
		}
	case <-time.After(awaitTimeout):
		t.Fatal("no log line on $SYS/broker/log/N")
	}
	b.WaitLine("as newcomer (")
}

// procStat returns the fields of /proc/PID/stat after the command name
// (state, ppid, pgrp, session, ...), or nil when the process is gone.
func procStat(pid int) []string {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	return strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
}

// processGone reports whether pid has exited (a zombie counts as gone: the
// daemon is not our child, and whoever reaps it may be slow).
func processGone(pid int) bool {
	f := procStat(pid)
	return len(f) == 0 || f[0] == "Z"
}

// TestDaemon starts the broker with -d: the command returns once the
// broker runs in the background in a session of its own, with its pid in
// pid_file; a broker that cannot start makes -d fail with the reason.
func TestDaemon(t *testing.T) {
	dir := t.TempDir()
	pidFile, logFile := filepath.Join(dir, "mamori.pid"), filepath.Join(dir, "mamori.log")
	port := freePort(t, "127.0.0.1")
	conf := filepath.Join(dir, "mamori.conf")
	writeFile(t, conf, fmt.Sprintf("user root\nlistener %d 127.0.0.1\nallow_anonymous true\npid_file %s\nlog_dest file %s\n", port, pidFile, logFile))

	ctx, cancel := context.WithTimeout(context.Background(), awaitTimeout+10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, mamoriBin, "broker", "-c", conf, "-d")
	cmd.Env = append(os.Environ(), brokertest.BrokerEnv(dir)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mamori broker -d: %v\n%s", err, out)
	}
	text, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("no pid_file once -d returned: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(text)))
	if err != nil || pid <= 0 {
		t.Fatalf("pid_file %q", text)
	}
	t.Cleanup(func() {
		if processGone(pid) {
			return
		}
		_ = syscall.Kill(pid, syscall.SIGTERM)
		for deadline := time.Now().Add(stopGrace); !processGone(pid); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Errorf("daemon %d still running after SIGTERM; killing it", pid)
				_ = syscall.Kill(pid, syscall.SIGKILL)
				return
			}
		}
	})
	if f := procStat(pid); len(f) < 4 || f[3] != strconv.Itoa(pid) {
		t.Errorf("daemon stat %v: want a session of its own (%d)", f, pid)
	}
	c := dial(t, client.Options{Address: fmt.Sprintf("127.0.0.1:%d", port), ClientID: "to-daemon"})
	c.Disconnect(packet.Success, nil)

	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(stopGrace); !processGone(pid); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("daemon %d did not exit on SIGTERM", pid)
		}
	}
	if log := string(mustRead(t, logFile)); !strings.Contains(log, "as to-daemon (") || !strings.Contains(log, "terminating") {
		t.Errorf("daemon log:\n%s", log)
	}

	// A daemon that cannot start: -d fails and says why.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	taken := ln.Addr().(*net.TCPAddr).Port
	writeFile(t, conf, fmt.Sprintf("user root\nlistener %d 127.0.0.1\nallow_anonymous true\n", taken))
	cmd = exec.CommandContext(ctx, mamoriBin, "broker", "-c", conf, "-d")
	cmd.Env = append(os.Environ(), brokertest.BrokerEnv(dir)...)
	out, err = cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("-d succeeded with the port taken:\n%s", out)
	}
	if !strings.Contains(string(out), "address already in use") {
		t.Errorf("-d failure does not say why:\n%s", out)
	}
}

// TestUserDropsPrivileges starts the broker as root with `user nobody`: it
// opens its listener as root, then runs as nobody.
func TestUserDropsPrivileges(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	// The configuration is read again on SIGHUP, as nobody: it must be in
	// a directory nobody can search (the broker refuses to start
	// otherwise, see TestRereadableFilesAfterDrop).
	b := brokertest.StartBroker(t, brokertest.BrokerConfig{Bin: mamoriBin, Dir: openDir(t), DialReady: true,
		Conf: func(port int) string {
			return fmt.Sprintf("user nobody\nlistener %d 127.0.0.1\nallow_anonymous true\n", port)
		}})
	b.WaitLine(" running")
	status := string(mustRead(t, fmt.Sprintf("/proc/%d/status", b.Pid())))
	var uidLine string
	for _, l := range strings.Split(status, "\n") {
		if strings.HasPrefix(l, "Uid:") {
			uidLine = l
		}
	}
	f := strings.Fields(uidLine)
	if len(f) != 5 || f[1] != u.Uid || f[2] != u.Uid || f[3] != u.Uid {
		t.Fatalf("broker runs as %q, want uid %s", uidLine, u.Uid)
	}
	c := dial(t, client.Options{Address: b.Addr(), ClientID: "after-drop"})
	c.Disconnect(packet.Success, nil)

	// A user that does not exist: refused, as Mosquitto does.
	p, err := runBroker(t, fmt.Sprintf("user no-such-user-mamori\nlistener %d 127.0.0.1\n", freePort(t, "127.0.0.1")))
	if err == nil || !p.HasLine("unable to drop privileges") {
		t.Errorf("a missing user was not refused: %v", err)
	}
}
