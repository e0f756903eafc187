package packet

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

func addSeeds(f *testing.F) {
	for _, fx := range Fixtures() {
		f.Add(fx.Raw, byte(fx.Version), uint16(7))
	}
}

// FuzzDecode checks that no input panics the decoder, that every error is a
// reason code, and that what decodes re-encodes to something that decodes to
// the same encoding again.
func FuzzDecode(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte, ver byte, _ uint16) {
		v := Version(ver%3 + 3)
		h, ok, err := ParseHeader(data, 1<<16)
		if err != nil {
			checkCode(t, err)
			return
		}
		if !ok || len(data) < h.Size() {
			return
		}
		p, err := Decode(h, data[h.Len:h.Size()], v)
		if err != nil {
			checkCode(t, err)
			return
		}
		if c, isConnect := p.(*Connect); isConnect {
			v = c.Version
		}
		enc := p.Append(nil, v)
		h2, ok, err := ParseHeader(enc, 0)
		if err != nil || !ok || h2.Size() != len(enc) {
			t.Fatalf("re-encoding %T is not one packet: %x (%v)", p, enc, err)
		}
		p2, err := Decode(h2, enc[h2.Len:], v)
		if err != nil {
			t.Fatalf("re-encoded %T does not decode: %v\n in  %x\n out %x", p, err, data[:h.Size()], enc)
		}
		if enc2 := p2.Append(nil, v); !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding not stable for %T:\n %x\n %x", p, enc, enc2)
		}
	})
}

func checkCode(t *testing.T, err error) {
	t.Helper()
	var rc ReasonCode
	var e *Error
	if !errors.As(err, &rc) && !errors.As(err, &e) {
		t.Fatalf("error is not a reason code: %v", err)
	}
	if !CodeOf(err).IsError() {
		t.Fatalf("error carries a success code: %v", err)
	}
}

// chunkReader returns the data in chunks whose sizes come from the fuzzer,
// as a network delivers a stream.
type chunkReader struct {
	data  []byte
	sizes []byte
	i     int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := 1
	if len(c.sizes) > 0 {
		n = int(c.sizes[c.i%len(c.sizes)]) + 1
		c.i++
	}
	n = min(n, len(p), len(c.data))
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

// FuzzReaderSplit feeds a stream split at arbitrary points and checks that
// the Reader frames exactly the packets it frames from the unsplit stream.
func FuzzReaderSplit(f *testing.F) {
	var all []byte
	for _, fx := range Fixtures() {
		if fx.Err == 0 {
			all = append(all, fx.Raw...)
		}
	}
	f.Add(all, []byte{0, 3, 200, 1})
	f.Add(all, []byte{255})
	f.Fuzz(func(t *testing.T, data, sizes []byte) {
		whole := frameAll(bytes.NewReader(data), 4096)
		split := frameAll(&chunkReader{data: data, sizes: sizes}, 4096)
		if len(whole) != len(split) {
			t.Fatalf("framed %d packets whole, %d split", len(whole), len(split))
		}
		for i := range whole {
			if !bytes.Equal(whole[i], split[i]) {
				t.Fatalf("packet %d differs: %x vs %x", i, whole[i], split[i])
			}
		}
	})
}

func frameAll(src io.Reader, max int) [][]byte {
	r := NewReader(src, max)
	var out [][]byte
	for {
		for {
			h, body, ok, err := r.Next()
			if err != nil {
				return append(out, []byte("error: "+CodeOf(err).String()))
			}
			if !ok {
				break
			}
			out = append(out, append([]byte{byte(h.Type)<<4 | h.Flags}, body...))
		}
		if err := r.Fill(); err != nil {
			if errors.Is(err, io.EOF) {
				return out
			}
			return append(out, []byte("error: "+CodeOf(err).String()))
		}
	}
}

func TestReaderGrowsAndReleases(t *testing.T) {
	big := (&Publish{Topic: []byte("t"), Payload: make([]byte, 10000)}).Append(nil, V311)
	small := AppendAck(nil, PUBACK, 1)
	stream := append(append(append([]byte{}, small...), big...), small...)
	r := NewReader(&chunkReader{data: stream, sizes: []byte{99}}, 1<<20)
	var types []Type
	for len(types) < 3 {
		if err := r.Fill(); err != nil {
			t.Fatalf("fill: %v", err)
		}
		for {
			h, _, ok, err := r.Next()
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			types = append(types, h.Type)
		}
	}
	if types[0] != PUBACK || types[1] != PUBLISH || types[2] != PUBACK {
		t.Fatalf("got %v", types)
	}
	if r.Cap() < len(big) {
		t.Fatalf("buffer did not grow to the packet: %d", r.Cap())
	}
	r.Release()
	if r.Cap() != 0 {
		t.Fatal("Release kept the buffer")
	}
}

func TestReaderRejectsOversizeBeforeReadingBody(t *testing.T) {
	// Header announces 1 MiB; the limit is 1 KiB; only the header is sent.
	hdr := AppendHeader(nil, PUBLISH, 0, 1<<20)
	r := NewReader(bytes.NewReader(hdr), 1024)
	if err := r.Fill(); err != nil {
		t.Fatal(err)
	}
	_, _, _, err := r.Next()
	if CodeOf(err) != ErrPacketTooLarge {
		t.Fatalf("err %v, want packet too large", err)
	}
	if r.Cap() > 1024 {
		t.Fatalf("buffer grew to %d for a packet over the limit", r.Cap())
	}
}

// ReadPacket reads as often as it takes: here one byte per read.
func TestReaderReadPacketAcrossReads(t *testing.T) {
	var stream []byte
	stream = (&Publish{Topic: []byte("a/b"), Payload: []byte("first")}).Append(stream, V311)
	stream = Pingreq{}.Append(stream, V311)
	r := NewReader(iotest.OneByteReader(bytes.NewReader(stream)), 0)
	h, body, err := r.ReadPacket()
	if err != nil || h.Type != PUBLISH {
		t.Fatalf("first: %v %v", h.Type, err)
	}
	var p Publish
	if err := p.Decode(h.Flags, body, V311); err != nil || string(p.Payload) != "first" {
		t.Fatalf("first: %+v %v", p, err)
	}
	if h, _, err := r.ReadPacket(); err != nil || h.Type != PINGREQ {
		t.Fatalf("second: %v %v", h.Type, err)
	}
	if _, _, err := r.ReadPacket(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the stream: %v, want EOF", err)
	}
}

// A header announcing a huge packet must not make the reader allocate it:
// the buffer follows the bytes that actually arrive (a hostile client
// sending five bytes would otherwise cost 256 MiB per connection).
func TestReaderMemoryFollowsArrivingBytes(t *testing.T) {
	const announced = 200 << 20
	stream := AppendHeader(nil, PUBLISH, 0, announced)
	stream = append(stream, make([]byte, 1<<20)...) // 1 MiB of the 200 arrive
	r := NewReader(&chunkReader{data: stream, sizes: []byte{250}}, 0)
	received := 0
	for {
		if err := r.Fill(); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatal(err)
		}
		received = r.Buffered()
		if limit := max(maxReadBuf, 4*received); r.Cap() > limit {
			t.Fatalf("buffer %d bytes with %d received (limit %d)", r.Cap(), received, limit)
		}
		if _, _, ok, err := r.Next(); ok || err != nil {
			t.Fatalf("incomplete packet framed: ok %v err %v", ok, err)
		}
	}
	if received != len(stream) {
		t.Fatalf("read %d of %d bytes", received, len(stream))
	}

	// A large packet that does arrive in full is framed intact across the
	// doublings.
	payload := make([]byte, 3<<20)
	for i := range payload {
		payload[i] = byte(i * 13)
	}
	big := (&Publish{Topic: []byte("big"), Payload: payload}).Append(nil, V5)
	big = Pingreq{}.Append(big, V5)
	r = NewReader(&chunkReader{data: big, sizes: []byte{255, 7, 100}}, 0)
	h, body, err := r.ReadPacket()
	if err != nil || h.Type != PUBLISH {
		t.Fatalf("large packet: %v %v", h.Type, err)
	}
	var p Publish
	if err := p.Decode(h.Flags, body, V5); err != nil || !bytes.Equal(p.Payload, payload) {
		t.Fatalf("large packet damaged: %v", err)
	}
	if h, _, err := r.ReadPacket(); err != nil || h.Type != PINGREQ {
		t.Fatalf("after the large packet: %v %v", h.Type, err)
	}
}
