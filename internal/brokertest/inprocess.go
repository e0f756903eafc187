package brokertest

import (
	"crypto/tls"
	"net"
	"testing"

	"github.com/mamori-mqtt/mamori/internal/broker"
)

// InProcess runs a broker with default options (no $SYS, no connection
// log lines, no memory trimming) in the test's process on 127.0.0.1:0,
// over TLS when serverTLS is set, and returns its address. It is closed
// when the test ends.
func InProcess(t testing.TB, serverTLS *tls.Config) string {
	t.Helper()
	opts := broker.DefaultOptions()
	opts.SysInterval = 0
	opts.ConnectionMessages = false
	opts.TrimMemory = false
	b, err := broker.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if serverTLS != nil {
		ln = tls.NewListener(ln, serverTLS)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = b.Serve(ln, &broker.Listener{Name: "in-process"})
	}()
	t.Cleanup(func() {
		b.Close()
		<-done
	})
	return addr
}
