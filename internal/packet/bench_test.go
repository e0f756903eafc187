package packet

import "testing"

func BenchmarkDecodePublishV311(b *testing.B) {
	raw := (&Publish{QoS: 1, PacketID: 3, Topic: []byte("sensors/42/temperature"), Payload: make([]byte, 64)}).Append(nil, V311)
	benchDecodePublish(b, raw, V311)
}

func BenchmarkDecodePublishV5Props(b *testing.B) {
	p := &Publish{QoS: 1, PacketID: 3, Topic: []byte("sensors/42/temperature"), Payload: make([]byte, 64)}
	p.Props.Set(PropMessageExpiry)
	p.Props.MessageExpiry = 60
	p.Props.Set(PropContentType)
	p.Props.ContentType = []byte("application/json")
	p.Props.AddUser("trace", "abc")
	benchDecodePublish(b, p.Append(nil, V5), V5)
}

func benchDecodePublish(b *testing.B, raw []byte, v Version) {
	var p Publish
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		h, _, err := ParseHeader(raw, 0)
		if err != nil {
			b.Fatal(err)
		}
		if err := p.Decode(h.Flags, raw[h.Len:], v); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodePublish(b *testing.B) {
	p := &Publish{QoS: 1, PacketID: 3, Topic: []byte("sensors/42/temperature"), Payload: make([]byte, 64)}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = p.Append(buf[:0], V311)
	}
}

func BenchmarkEncodePublishV5Props(b *testing.B) {
	p := &Publish{QoS: 1, PacketID: 3, Topic: []byte("sensors/42/temperature"), Payload: make([]byte, 64)}
	p.Props.Set(PropMessageExpiry)
	p.Props.MessageExpiry = 60
	p.Props.AddUser("trace", "abc")
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = p.Append(buf[:0], V5)
	}
}

func BenchmarkDecodeConnect(b *testing.B) {
	c := &Connect{Version: V5, CleanStart: true, KeepAlive: 60, ClientID: []byte("device-0001"),
		UsernameFlag: true, Username: []byte("user"), PasswordFlag: true, Password: []byte("secret")}
	raw := c.Append(nil, V5)
	var d Connect
	b.ReportAllocs()
	for b.Loop() {
		h, _, _ := ParseHeader(raw, 0)
		if err := d.Decode(raw[h.Len:]); err != nil {
			b.Fatal(err)
		}
	}
}
