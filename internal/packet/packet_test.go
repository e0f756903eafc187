package packet

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// decodeRaw parses one whole packet from raw with no size limit.
func decodeRaw(raw []byte, v Version) (Packet, error) {
	h, ok, err := ParseHeader(raw, 0)
	if err != nil {
		return nil, err
	}
	if !ok || h.Size() != len(raw) {
		return nil, errors.New("fixture is not exactly one packet")
	}
	return Decode(h, raw[h.Len:], v)
}

func TestFixtures(t *testing.T) {
	for _, f := range Fixtures() {
		t.Run(f.Name, func(t *testing.T) {
			p, err := decodeRaw(f.Raw, f.Version)
			if f.Err != 0 {
				if err == nil {
					t.Fatalf("decoded %#v, want error %v [%s]", p, f.Err, f.Spec)
				}
				if got := CodeOf(err); got != f.Err {
					t.Fatalf("error %v (code %#x), want code %#x [%s]", err, byte(got), byte(f.Err), f.Spec)
				}
				return
			}
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			// Re-encoding a decoded valid packet gives the same bytes.
			out := p.Append(nil, f.Version)
			if !bytes.Equal(out, f.Raw) {
				t.Fatalf("re-encoded\n got %x\nwant %x", out, f.Raw)
			}
		})
	}
}

func TestConnectFields(t *testing.T) {
	var c *Connect
	for _, f := range Fixtures() {
		if f.Name == "connect v5 with props, will, user, password" {
			p, err := decodeRaw(f.Raw, V5)
			if err != nil {
				t.Fatal(err)
			}
			c = p.(*Connect)
		}
	}
	if c == nil {
		t.Fatal("fixture missing")
	}
	if c.Version != V5 || !c.CleanStart || c.KeepAlive != 10 || string(c.ClientID) != "id" {
		t.Fatalf("header fields wrong: %+v", c)
	}
	if !c.Props.Present(PropSessionExpiry) || c.Props.SessionExpiry != 60 {
		t.Fatalf("session expiry: %+v", c.Props)
	}
	if !c.WillFlag || c.WillQoS != 1 || !c.WillRetain || string(c.WillTopic) != "w/t" || string(c.WillPayload) != "bye" {
		t.Fatalf("will fields wrong: %+v", c)
	}
	if c.WillProps.WillDelay != 5 || !c.WillProps.Present(PropWillDelay) {
		t.Fatalf("will delay: %+v", c.WillProps)
	}
	if string(c.Username) != "u" || string(c.Password) != "pw" {
		t.Fatalf("credentials wrong")
	}
}

func TestUserPropertiesPassThrough(t *testing.T) {
	p := &Publish{Topic: []byte("t"), Payload: []byte("x")}
	p.Props.AddUser("k", "v")
	p.Props.AddUser("", "")
	raw := p.Append(nil, V5)
	var q Publish
	h, _, err := ParseHeader(raw, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Decode(h.Flags, raw[h.Len:], V5); err != nil {
		t.Fatal(err)
	}
	want := [][2]string{{"k", "v"}, {"", ""}}
	if got := q.Props.UserPairs(); !reflect.DeepEqual(got, want) {
		t.Fatalf("user pairs %v, want %v", got, want)
	}
}

func TestNonAdjacentUserPropertiesAreKept(t *testing.T) {
	// user, payload format, user: the decoder must keep both user entries in order.
	raw := []byte{0x30, 19, 0, 1, 't', 15, 0x26, 0, 1, 'a', 0, 1, 'b', 0x01, 1, 0x26, 0, 1, 'c', 0, 0}
	var p Publish
	h, _, _ := ParseHeader(raw, 0)
	if err := p.Decode(h.Flags, raw[h.Len:], V5); err != nil {
		t.Fatal(err)
	}
	want := [][2]string{{"a", "b"}, {"c", ""}}
	if got := p.Props.UserPairs(); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v want %v", got, want)
	}
	if p.Props.PayloadFormat != 1 {
		t.Fatal("payload format lost")
	}
}

func TestParseHeaderIncompleteAndLimits(t *testing.T) {
	tests := []struct {
		name    string
		buf     []byte
		max     int
		ok      bool
		errCode ReasonCode
	}{
		{"empty", nil, 0, false, 0},
		{"one byte", []byte{0x30}, 0, false, 0},
		{"continuation pending", []byte{0x30, 0x80}, 0, false, 0},
		{"complete header", []byte{0x30, 0x05}, 0, true, 0},
		// The limit is checked from the header alone, before the body arrives.
		{"too large for limit", []byte{0x30, 0xff, 0x7f}, 1024, false, ErrPacketTooLarge},
		{"at limit", []byte{0x30, 0x7d}, 127, true, 0},
		{"max remaining", []byte{0x30, 0xff, 0xff, 0xff, 0x7f}, 0, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, ok, err := ParseHeader(tt.buf, tt.max)
			if tt.errCode != 0 {
				if CodeOf(err) != tt.errCode {
					t.Fatalf("err %v, want %v", err, tt.errCode)
				}
				return
			}
			if err != nil || ok != tt.ok {
				t.Fatalf("ok=%v err=%v, want ok=%v", ok, err, tt.ok)
			}
		})
	}
}

func TestVarInt(t *testing.T) {
	for _, n := range []int{0, 1, 127, 128, 16383, 16384, 2097151, 2097152, MaxRemaining} {
		b := AppendVarInt(nil, n)
		if len(b) != VarIntLen(n) {
			t.Fatalf("%d: len %d, VarIntLen %d", n, len(b), VarIntLen(n))
		}
		r := reader{b: b}
		got, err := r.varint()
		if err != nil || got != n {
			t.Fatalf("%d: decoded %d, %v", n, got, err)
		}
	}
}

func TestPublishSizeAndPacketIDOffset(t *testing.T) {
	for _, v := range []Version{V311, V5} {
		p := &Publish{QoS: 1, Topic: []byte("a/b"), PacketID: 0x1234, Payload: bytes.Repeat([]byte{1}, 300)}
		p.Props.Set(PropMessageExpiry)
		p.Props.MessageExpiry = 9
		raw := p.Append(nil, v)
		if len(raw) != p.Size(v) {
			t.Fatalf("v%v: size %d, encoded %d", v, p.Size(v), len(raw))
		}
		off := p.PacketIDOffset(v)
		if raw[off] != 0x12 || raw[off+1] != 0x34 {
			t.Fatalf("v%v: packet id not at offset %d", v, off)
		}
	}
}

func TestAckEncodingsV5(t *testing.T) {
	// [MQTT-3.4.2-1]: success without properties may omit code and properties.
	a := &Ack{Kind: PUBACK, PacketID: 1}
	if got := a.Append(nil, V5); !bytes.Equal(got, []byte{0x40, 2, 0, 1}) {
		t.Fatalf("got %x", got)
	}
	a.Code = ErrNotAuthorized
	if got := a.Append(nil, V5); !bytes.Equal(got, []byte{0x40, 3, 0, 1, 0x87}) {
		t.Fatalf("got %x", got)
	}
	if got := AppendAck(nil, PUBREL, 9); !bytes.Equal(got, []byte{0x62, 2, 0, 9}) {
		t.Fatalf("got %x", got)
	}
}

func TestDecodePublishDoesNotAllocate(t *testing.T) {
	raw := (&Publish{QoS: 1, PacketID: 3, Topic: []byte("sensors/1/temp"), Payload: make([]byte, 64)}).Append(nil, V5)
	h, _, _ := ParseHeader(raw, 0)
	var p Publish
	allocs := testing.AllocsPerRun(100, func() {
		if err := p.Decode(h.Flags, raw[h.Len:], V5); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Publish.Decode allocates %v times per packet", allocs)
	}
}

func TestReasonCodeErrors(t *testing.T) {
	err := ErrNotAuthorized.With("acl")
	if !errors.Is(err, ErrNotAuthorized) || CodeOf(err) != ErrNotAuthorized || ReasonOf(err) != "acl" {
		t.Fatalf("error wrapping broken: %v", err)
	}
	if CodeOf(errors.New("x")) != ErrUnspecified {
		t.Fatal("foreign error should map to unspecified")
	}
	tests := map[ReasonCode]byte{Success: 0, ErrUnsupportedVersion: 1, ErrClientIDNotValid: 2,
		ErrServerUnavailable: 3, ErrBadUsernameOrPassword: 4, ErrNotAuthorized: 5, ErrBanned: 5}
	for rc, want := range tests {
		if got := ConnackV3(rc); got != want {
			t.Errorf("ConnackV3(%v) = %d, want %d", rc, got, want)
		}
	}
}
