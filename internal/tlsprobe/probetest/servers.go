package probetest

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mamori-mqtt/mamori/internal/packet"
)

// server runs an accept loop and one goroutine per connection, all stopped
// and waited for in t.Cleanup.
type server struct {
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func startServer(t testing.TB, ln net.Listener, handle func(net.Conn)) string {
	t.Helper()
	s := &server{ln: ln, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns[c] = struct{}{}
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer func() {
					c.Close()
					s.mu.Lock()
					delete(s.conns, c)
					s.mu.Unlock()
				}()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				handle(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return ln.Addr().String()
}

func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// StartTLS starts a Go TLS server that speaks just enough MQTT: it answers
// a CONNECT with a CONNACK carrying code (0 accepts), then waits for the
// client to close. It returns "127.0.0.1:PORT".
func StartTLS(t testing.TB, cfg *tls.Config, code byte) string {
	t.Helper()
	return startServer(t, tls.NewListener(listen(t), cfg), func(c net.Conn) {
		if err := c.(*tls.Conn).Handshake(); err != nil {
			return
		}
		answerConnect(c, code)
	})
}

// answerConnect reads one CONNECT and writes a CONNACK; then it reads until
// the client closes.
func answerConnect(c net.Conn, code byte) {
	r := packet.NewReader(c, 64<<10)
	for {
		h, body, ok, err := r.Next()
		if err != nil {
			return
		}
		if ok {
			var cp packet.Connect
			if h.Type != packet.CONNECT || cp.Decode(body) != nil {
				return // as a broker does with a protocol violation
			}
			ack := &packet.Connack{Code: packet.ReasonCode(code)}
			if _, err := c.Write(ack.Append(nil, cp.Version)); err != nil {
				return
			}
			io.Copy(io.Discard, c)
			return
		}
		if err := r.Fill(); err != nil {
			return
		}
	}
}

// StartPlainMQTT starts a plain (no TLS) MQTT endpoint. A TLS ClientHello
// is a malformed CONNECT to it and it closes the connection, as mosquitto
// and mamori do. With answerAnything, it instead answers any first bytes
// with a CONNACK 0x84 (unsupported protocol version), as a broker that
// reports bad protocol names may.
func StartPlainMQTT(t testing.TB, answerAnything bool) string {
	t.Helper()
	return startServer(t, listen(t), func(c net.Conn) {
		if answerAnything {
			buf := make([]byte, 512)
			if _, err := c.Read(buf); err != nil {
				return
			}
			// An MQTT 5 CONNACK 0x84 (unsupported protocol version): five
			// bytes, a whole TLS record header's worth.
			c.Write([]byte{0x20, 0x03, 0x00, 0x84, 0x00})
			return
		}
		answerConnect(c, 0)
	})
}

// StartSilent starts a TCP endpoint that accepts and never answers.
func StartSilent(t testing.TB) string {
	t.Helper()
	return startServer(t, listen(t), func(c net.Conn) {
		io.Copy(io.Discard, c)
	})
}

// FreePort returns a port that was free a moment ago, for external servers
// that cannot be given a listener.
func FreePort(t testing.TB) int {
	t.Helper()
	ln := listen(t)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// waitListening waits until something accepts on addr, or fails the test
// with the process's output.
func waitListening(t testing.TB, addr string, out *syncBuffer, exited <-chan struct{}) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			t.Fatalf("server exited before listening on %s:\n%s", addr, out.snapshot())
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("nothing listens on %s after 10s:\n%s", addr, out.snapshot())
}

// syncBuffer is a bytes.Buffer safe for a process's output goroutines and
// the test reading it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) snapshot() *bytes.Buffer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.NewBuffer(append([]byte(nil), s.b.Bytes()...))
}

// startProcess runs cmd until the test ends, then kills it by its PID and
// waits for it.
func startProcess(t testing.TB, cmd *exec.Cmd, addr string) {
	t.Helper()
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	// s_server reads commands from stdin and stops at its end: give it a
	// pipe that stays open until the cleanup.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdin = pr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pr.Close()
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		pw.Close()
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(cmd.Path), out.snapshot())
		}
	})
	waitListening(t, addr, out, exited)
}

// StartMosquitto runs Debian's mosquitto broker with a TLS listener on
// 127.0.0.1 configured by conf (cafile, certfile, keyfile...), and returns
// its address.
func StartMosquitto(t testing.TB, conf string) string {
	t.Helper()
	const bin = "/usr/sbin/mosquitto"
	if _, err := os.Stat(bin); err != nil {
		t.Skip("mosquitto not installed")
	}
	port := FreePort(t)
	path := filepath.Join(t.TempDir(), "mosquitto.conf")
	// "user root": the test's files are readable by root only, and
	// mosquitto would otherwise switch to the mosquitto user.
	body := fmt.Sprintf("user root\npersistence false\nlog_dest stderr\nlistener %d 127.0.0.1\nallow_anonymous true\n%s\n", port, conf)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	startProcess(t, exec.Command(bin, "-c", path), addr)
	return addr
}

// StartOpenSSL runs "openssl s_server" on 127.0.0.1 with args (-cert,
// -key, -Verify...) and returns its address.
func StartOpenSSL(t testing.TB, dir string, args ...string) string {
	t.Helper()
	port := FreePort(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	all := append([]string{"s_server", "-accept", addr, "-quiet"}, args...)
	cmd := exec.Command("openssl", all...)
	cmd.Dir = dir
	startProcess(t, cmd, addr)
	return addr
}
