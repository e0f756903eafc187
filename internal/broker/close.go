package broker

import (
	"io"
	"net"
	"time"
)

// Lingering close. When the broker ends a connection with a packet of its
// own (a DISCONNECT, a refusing CONNACK) the client may still be writing.
// Closing a socket that has unread input makes the kernel send a reset,
// and a reset can make the client's kernel discard the DISCONNECT before
// the client read it. So the broker stops writing (a FIN after the
// DISCONNECT), then reads and discards the client's input until the client
// closes too or a short deadline passes, and only then closes.
const (
	lingerTimeout = 2 * time.Second
	lingerMaxRead = 1 << 20 // discarded at most; a client still sending after that gets the reset
)

// closeWriter is a connection that can send its FIN while still reading
// (*net.TCPConn, *net.UnixConn, *tls.Conn).
type closeWriter interface {
	CloseWrite() error
}

// lingerClose closes nc the careful way described above, in a goroutine
// of its own; the connection is finished for the broker as soon as this
// returns.
func lingerClose(nc net.Conn) {
	cw, ok := nc.(closeWriter)
	if !ok || cw.CloseWrite() != nil {
		_ = nc.Close()
		return
	}
	_ = nc.SetReadDeadline(time.Now().Add(lingerTimeout))
	go func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(nc, lingerMaxRead))
		_ = nc.Close()
	}()
}
