package tlspsk

import (
	"bytes"
	"encoding/hex"
	"io"
	"net"
	"testing"
	"time"
)

// scriptConn is a net.Conn that reads a fixed input and records writes.
type scriptConn struct {
	r       io.Reader
	written bytes.Buffer
}

func (s *scriptConn) Read(p []byte) (int, error)       { return s.r.Read(p) }
func (s *scriptConn) Write(p []byte) (int, error)      { return s.written.Write(p) }
func (s *scriptConn) Close() error                     { return nil }
func (s *scriptConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (s *scriptConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (s *scriptConn) SetDeadline(time.Time) error      { return nil }
func (s *scriptConn) SetReadDeadline(time.Time) error  { return nil }
func (s *scriptConn) SetWriteDeadline(time.Time) error { return nil }

// recordedClientHello returns the first flight of this package's client
// for cfg (a ClientHello record), for seeds.
func recordedClientHello(cfg *Config) []byte {
	sc := &scriptConn{r: bytes.NewReader(nil)}
	Client(sc, cfg).Handshake()
	return sc.written.Bytes()
}

func seedHellos(f *testing.F) [][]byte {
	rfc, _ := hex.DecodeString("010001fc03031bc3ceb6bbe39cff938355b5a50adb6db21b7a6af649d7b4bc419d7876487d95" +
		"000006130113031302010001cd0000000b0009000006736572766572ff01000100000a0014001200")
	var out [][]byte
	out = append(out, rfc)
	for _, cfg := range []*Config{
		{Identity: "dev1", Key: testKey, ServerName: "mqtt.local", NextProtos: []string{"mqtt"}},
		{Identity: "dev1", Key: testKey, MaxVersion: VersionTLS12},
		{Identity: "dev1", Key: testKey, MinVersion: VersionTLS13, CurvePreferences: []CurveID{P256}},
	} {
		rec := recordedClientHello(cfg)
		if len(rec) > 5 {
			out = append(out, rec[5:])
		}
	}
	return out
}

// FuzzClientHello: the ClientHello parser never panics, and what it
// accepts is consistent (binders inside the message, as many as
// identities).
func FuzzClientHello(f *testing.F) {
	for _, s := range seedHellos(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		ch, err := parseClientHello(msg)
		if err != nil {
			return
		}
		if len(ch.binders) != len(ch.identities) || ch.bindersAt > len(msg) {
			t.Fatalf("inconsistent: %d binders, %d identities, binders at %d of %d", len(ch.binders), len(ch.identities), ch.bindersAt, len(msg))
		}
		if len(ch.identities) > 0 {
			// pre_shared_key is last and its binders end the message.
			n := int(msg[ch.bindersAt])<<8 | int(msg[ch.bindersAt+1])
			if ch.bindersAt+2+n != len(msg) {
				t.Fatalf("binders at %d (length %d) do not end the %d-byte message", ch.bindersAt, n, len(msg))
			}
		}
	})
}

// FuzzServerHello: the ServerHello parser never panics.
func FuzzServerHello(f *testing.F) {
	sh, _ := hex.DecodeString("0200005c03033ccfd2dec890222763472ae8136777c9d7358777bb66e91ea5122495f559ea2d" +
		"00130100003400290002000000330024001d0020121761ee42c333e1b9e77b60dd57c2053cd94512ab" +
		"47f115e86eff50942cea31002b00020304")
	f.Add(sh)
	f.Add([]byte{2, 0, 0, 38, 3, 3})
	f.Fuzz(func(t *testing.T, msg []byte) {
		if sh, err := parseServerHello(msg); err == nil && len(sh.random) != 32 {
			t.Fatal("accepted without a random")
		}
	})
}

// FuzzEncryptedExtensions: the EncryptedExtensions parser never panics.
func FuzzEncryptedExtensions(f *testing.F) {
	f.Add([]byte{8, 0, 0, 2, 0, 0})
	f.Add([]byte{8, 0, 0, 11, 0, 9, 0, 16, 0, 5, 0, 3, 4, 'm', 'q', 't', 't'})
	f.Fuzz(func(t *testing.T, msg []byte) { parseEncryptedExtensions(msg) })
}

// FuzzKeyExchange: the TLS 1.2 ServerKeyExchange and ClientKeyExchange
// parsers, for PSK and ECDHE_PSK, never panic.
func FuzzKeyExchange(f *testing.F) {
	f.Add([]byte{12, 0, 0, 8, 0, 6, 'm', 'a', 'm', 'o', 'r', 'i'})
	f.Add([]byte{16, 0, 0, 6, 0, 4, 'd', 'e', 'v', '1'})
	f.Add(append([]byte{12, 0, 0, 40, 0, 2, 'h', 'i', 3, 0, 29, 32}, make([]byte, 32)...))
	f.Add(append([]byte{16, 0, 0, 39, 0, 4, 'd', 'e', 'v', '1', 32}, make([]byte, 32)...))
	f.Fuzz(func(t *testing.T, msg []byte) {
		for _, k := range []kx{kxPSK, kxECDHEPSK} {
			parseServerKeyExchange(msg, k)
			parseClientKeyExchange(msg, k)
		}
	})
}

// FuzzServerHandshake feeds arbitrary bytes to a server as the client's
// side of the connection: records, reassembly and the state machine never
// panic and end in an error or a handshake.
func FuzzServerHandshake(f *testing.F) {
	for _, s := range seedHellos(f) {
		rec := append([]byte{22, 3, 1, byte(len(s) >> 8), byte(len(s))}, s...)
		f.Add(rec)
		// Split in two records.
		if len(s) > 10 {
			two := append([]byte{22, 3, 1, 0, 10}, s[:10]...)
			two = append(two, 22, 3, 1, byte((len(s)-10)>>8), byte(len(s)-10))
			f.Add(append(two, s[10:]...))
		}
	}
	cfg := &Config{GetKey: keyLookup(map[string][]byte{"dev1": testKey}), Hint: "h"}
	f.Fuzz(func(t *testing.T, in []byte) {
		sc := &scriptConn{r: bytes.NewReader(in)}
		Server(sc, cfg).Handshake()
	})
}

// FuzzClientHandshake feeds arbitrary bytes to a client as the server's
// side.
func FuzzClientHandshake(f *testing.F) {
	// A real server's first flight, for TLS 1.3 and TLS 1.2.
	for _, cli := range []*Config{{Identity: "dev1", Key: testKey}, {Identity: "dev1", Key: testKey, MaxVersion: VersionTLS12}} {
		srv := &scriptConn{r: bytes.NewReader(recordedClientHello(cli))}
		Server(srv, &Config{GetKey: keyLookup(map[string][]byte{"dev1": testKey}), Hint: "h"}).Handshake()
		f.Add(srv.written.Bytes())
	}
	cfg := &Config{Identity: "dev1", Key: testKey}
	f.Fuzz(func(t *testing.T, in []byte) {
		sc := &scriptConn{r: bytes.NewReader(in)}
		Client(sc, cfg).Handshake()
	})
}
