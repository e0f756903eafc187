package tlspsk

import (
	"bytes"
	"crypto/sha256"
	"io"
	"testing"
)

// established returns a connection whose TLS 1.3 (or TLS 1.2) handshake
// is taken as done, reading in, with fixed keys, and the matching sealer
// a peer would use.
func established(in io.Reader, tls13 bool) (*Conn, *halfConn) {
	if in == nil {
		in = bytes.NewReader(nil)
	}
	sc := &scriptConn{r: in}
	c := Server(sc, &Config{GetKey: keyLookup(nil)})
	var su *suite
	peer := &halfConn{}
	if tls13 {
		su = suiteByID(TLS_AES_128_GCM_SHA256)
		c.version = VersionTLS13
		secret := sha256.Sum256([]byte("fixed traffic secret"))
		c.in.set13(su, bytes.Clone(secret[:]))
		peer.set13(su, bytes.Clone(secret[:]))
		out := sha256.Sum256([]byte("fixed server secret"))
		c.out.set13(su, bytes.Clone(out[:]))
	} else {
		su = suiteByID(TLS_PSK_WITH_AES_128_GCM_SHA256)
		c.version = VersionTLS12
		key := bytes.Repeat([]byte{7}, 16)
		c.in.setKeys(su, bytes.Clone(key), []byte{1, 2, 3, 4}, false, nil)
		peer.setKeys(su, bytes.Clone(key), []byte{1, 2, 3, 4}, false, nil)
		c.out.setKeys(su, bytes.Clone(key), []byte{5, 6, 7, 8}, false, nil)
	}
	c.suite = su
	c.hsDone.Store(true)
	return c, peer
}

// FuzzRecords feeds records sealed with the right keys but arbitrary
// content types and payloads to an established connection: post-handshake
// messages (KeyUpdate, tickets, renegotiation), alerts, fragments and empty
// records never panic, and Read ends in data, EOF or an error.
func FuzzRecords(f *testing.F) {
	// The first byte picks the version (odd: TLS 1.3); then records as
	// type, 2-byte length, payload.
	f.Add([]byte{1, 23, 0, 5, 'h', 'e', 'l', 'l', 'o'})
	f.Add([]byte{1, 22, 0, 5, 24, 0, 0, 1, 1, 23, 0, 2, 'o', 'k'})
	f.Add([]byte{1, 22, 0, 2, 24, 0, 22, 0, 3, 0, 1, 0, 21, 0, 2, 1, 0})
	f.Add([]byte{0, 22, 0, 4, 1, 0, 0, 0, 23, 0, 1, 'x'})
	f.Add([]byte{0, 21, 0, 2, 2, 20})
	f.Fuzz(func(t *testing.T, script []byte) {
		if len(script) == 0 {
			return
		}
		tls13 := script[0]&1 == 1
		script = script[1:]
		var recs bytes.Buffer
		_, peer := established(nil, tls13)
		for len(script) >= 3 {
			typ, n := script[0], int(script[1])<<8|int(script[2])
			script = script[3:]
			n = min(n, len(script), maxPlaintext)
			out, err := peer.seal(nil, typ, script[:n])
			if err != nil {
				t.Fatal(err)
			}
			recs.Write(out)
			script = script[n:]
		}
		c, _ := established(bytes.NewReader(recs.Bytes()), tls13)
		buf := make([]byte, 256)
		for range 1000 {
			if _, err := c.Read(buf); err != nil {
				return
			}
		}
	})
}
