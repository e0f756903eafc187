package listener

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/mamori-mqtt/mamori/internal/config"
)

func TestInterfaceAddrsLoopback(t *testing.T) {
	ips, err := InterfaceAddrs("lo", config.SocketDomainIPv4, "")
	if err != nil {
		t.Skipf("no lo interface: %v", err)
	}
	if len(ips) != 1 || !ips[0].IsLoopback() || ips[0].To4() == nil {
		t.Errorf("lo ipv4: %v", ips)
	}
	if _, err := InterfaceAddrs("no-such-if0", config.SocketDomainAny, ""); err == nil {
		t.Errorf("a missing interface was accepted")
	}
}

func TestOpenUnixReplacesOnlyStaleSockets(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.sock")
	l := &config.Listener{UnixPath: path}

	lns, err := Open(l)
	if err != nil {
		t.Fatal(err)
	}
	// In use: a second broker must not take it over.
	if _, err := Open(l); err == nil || !strings.Contains(err.Error(), "another process") {
		t.Errorf("socket in use: %v", err)
	}
	// Left behind by a dead broker: replaced.
	lns[0].(*net.UnixListener).SetUnlinkOnClose(false)
	lns[0].Close()
	lns, err = Open(l)
	if err != nil {
		t.Fatalf("stale socket: %v", err)
	}
	lns[0].Close()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("socket not removed on close: %v", err)
	}

	file := filepath.Join(dir, "file")
	os.WriteFile(file, []byte("x"), 0o600)
	if _, err := Open(&config.Listener{UnixPath: file}); err == nil {
		t.Errorf("a regular file was replaced")
	}
}

// TestWebSocket runs an echo service in place of the broker.
func TestWebSocket(t *testing.T) {
	www := t.TempDir()
	os.WriteFile(filepath.Join(www, "index.html"), []byte("hi"), 0o644)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ws := &WebSocket{MaxConnections: 1, HTTPDir: www, Serve: func(nc net.Conn) {
		defer nc.Close()
		io.Copy(nc, nc)
	}}
	done := make(chan error, 1)
	go func() { done <- ws.ServeListener(ln) }()
	defer func() {
		ws.Close()
		ws.Wait()
		if err := <-done; err != nil {
			t.Errorf("ServeListener: %v", err)
		}
	}()
	url := "ws://" + ln.Addr().String() + "/mqtt"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{"mqtt"}})
	if err != nil {
		t.Fatal(err)
	}
	if c.Subprotocol() != "mqtt" {
		t.Errorf("subprotocol %q", c.Subprotocol())
	}
	if err := c.Write(ctx, websocket.MessageBinary, []byte{0x10, 0x00}); err != nil {
		t.Fatal(err)
	}
	typ, b, err := c.Read(ctx)
	if err != nil || typ != websocket.MessageBinary || string(b) != "\x10\x00" {
		t.Fatalf("echo: %v %v %q", err, typ, b)
	}
	// max_connections 1: a second upgrade is refused.
	if _, resp, err := websocket.Dial(ctx, url, nil); err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("second connection: %v", err)
	}
	c.Close(websocket.StatusNormalClosure, "")

	resp, err := http.Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hi" {
		t.Errorf("http_dir index: %q", body)
	}
}

// TestWebSocketIdleHTTPClosed (issue 20, same class as item 3): a client
// that makes one plain HTTP request and keeps the connection open must not
// hold it (a goroutine and its buffers) for ever; many such connections
// had no bound at all. An upgraded connection stays open however quiet.
func TestWebSocketIdleHTTPClosed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan net.Conn, 1)
	ws := &WebSocket{IdleTimeout: 200 * time.Millisecond, Serve: func(nc net.Conn) {
		served <- nc
		io.Copy(io.Discard, nc)
	}}
	done := make(chan error, 1)
	go func() { done <- ws.ServeListener(ln) }()
	defer func() {
		ws.Close()
		ws.Wait()
		if err := <-done; err != nil {
			t.Errorf("ServeListener: %v", err)
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var got strings.Builder
	buf := make([]byte, 512)
	for {
		n, err := c.Read(buf)
		got.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("the idle keep-alive connection was not closed by the server: %v (got %q)", err, got.String())
		}
	}
	if !strings.HasPrefix(got.String(), "HTTP/1.1 404") {
		t.Errorf("answer %q", got.String())
	}

	// A WebSocket connection, once upgraded, is not an idle HTTP one.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	wc, _, err := websocket.Dial(ctx, "ws://"+ln.Addr().String()+"/mqtt", &websocket.DialOptions{Subprotocols: []string{"mqtt"}})
	if err != nil {
		t.Fatal(err)
	}
	defer wc.CloseNow()
	nc := <-served
	// Quiet for several idle timeouts, then still usable. The wait is a
	// deadline on a read that must not return, not a timing assertion.
	readCtx, cancelRead := context.WithTimeout(ctx, time.Second)
	defer cancelRead()
	if _, _, err := wc.Read(readCtx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the upgraded connection ended while quiet: %v", err)
	}
	_ = nc
}
