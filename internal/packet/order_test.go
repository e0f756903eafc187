package packet

import (
	"bytes"
	"testing"
)

// Properties are encoded in the order they were decoded or Set — a
// forwarded message keeps its publisher's order, user properties
// interleaved with others included — and properties present but never Set
// in ascending identifier order after them.
func TestPropertyOrder(t *testing.T) {
	var in Properties
	in.SetUserPosition()
	in.User = append(in.User, userProp("k1", "v1")...)
	in.Set(PropResponseTopic)
	in.ResponseTopic = []byte("r")
	in.SetUserPosition()
	in.User = append(in.User, userProp("k2", "v2")...)
	in.Set(PropContentType)
	in.ContentType = []byte("c")
	p := &Publish{Topic: []byte("t"), Props: in}
	wire := p.Append(nil, V5)

	var h Header
	h, ok, err := ParseHeader(wire, 1<<20)
	if err != nil || !ok {
		t.Fatalf("header: %v", err)
	}
	var got Publish
	if err := got.Decode(h.Flags, wire[h.Len:], V5); err != nil {
		t.Fatal(err)
	}
	want := []byte{PropUser, PropResponseTopic, PropUser, PropContentType}
	if o := got.Props.Order(); !bytes.Equal(o, want) {
		t.Fatalf("decoded order %x, want %x", o, want)
	}
	if again := (&Publish{Topic: []byte("t"), Props: got.Props}).Append(nil, V5); !bytes.Equal(again, wire) {
		t.Fatalf("re-encoded\n%x\nwant\n%x", again, wire)
	}

	// Clear then Set moves a property to the end; SetFirst to the front.
	var c Properties
	c.Set(PropTopicAliasMaximum)
	c.Set(PropReceiveMaximum)
	c.Set(PropMaximumQoS)
	c.Clear(PropTopicAliasMaximum)
	c.Set(PropTopicAliasMaximum)
	c.SetFirst(PropMaximumQoS)
	if o := c.Order(); !bytes.Equal(o, []byte{PropMaximumQoS, PropReceiveMaximum, PropTopicAliasMaximum}) {
		t.Fatalf("order %x", o)
	}
}

func userProp(k, v string) []byte {
	var p Properties
	p.AddUser(k, v)
	return p.User
}
