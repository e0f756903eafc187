package listener

import (
	"context"
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
