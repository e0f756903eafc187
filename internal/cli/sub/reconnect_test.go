package sub_test

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// startMosquittoOn runs Debian's mosquitto on a fixed port until stop.
func startMosquittoOn(t *testing.T, dir string, port int) (stop func()) {
	t.Helper()
	cf := filepath.Join(dir, "m.conf")
	if err := os.WriteFile(cf, []byte("listener "+strconv.Itoa(port)+" 127.0.0.1\nallow_anonymous true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(mosquittoBin, "-c", cf)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("mosquitto did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return func() {
		cmd.Process.Kill()
		cmd.Wait()
	}
}

// TestReconnectAfterBrokerRestart: like mosquitto_sub, mamori sub
// reconnects when its connection is lost, subscribes again and goes on
// printing messages.
func TestReconnectAfterBrokerRestart(t *testing.T) {
	if _, err := exec.LookPath(mosquittoBin); err != nil {
		t.Skip("mosquitto not installed")
	}
	dir := t.TempDir()
	port := freePort(t)
	p := strconv.Itoa(port)
	for _, impl := range []string{"mosquitto", "mamori"} {
		t.Run(impl, func(t *testing.T) {
			stop := startMosquittoOn(t, dir, port)
			s := start(t, impl, "mosquitto_sub", []string{"-h", "127.0.0.1", "-p", p, "-t", "rc/t", "-C", "1", "-v", "-d"}, "")
			waitFor(t, s, "Subscribed (mid: 1)")
			stop()
			stop = startMosquittoOn(t, dir, port)
			defer stop()
			waitFor(t, s, "Subscribed (mid: 2)")
			runCmd(t, "mosquitto", "mosquitto_pub", []string{"-h", "127.0.0.1", "-p", p, "-t", "rc/t", "-m", "after restart"}, "")
			r := s.wait(t)
			if r.rc != 0 {
				t.Fatalf("exit %d: %+v", r.rc, r)
			}
			waitFor(t, s, "rc/t after restart")
		})
	}
}
