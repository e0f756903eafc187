package packet

// Fixture is a raw packet as it appears on the wire, with the protocol
// version it belongs to and, for invalid ones, the reason code the decoder
// must return. The table is shared by the codec's tests and the broker's, so
// both check the same bytes (mochi-mqtt's packets package does the same).
type Fixture struct {
	Name    string
	Version Version
	Raw     []byte
	Err     ReasonCode // 0: valid
	Spec    string     // normative statement checked, if any
}

// Fixtures returns the shared raw-byte fixtures.
func Fixtures() []Fixture {
	return []Fixture{
		{Name: "connect v311 minimal", Version: V311, Raw: []byte{
			0x10, 13, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 60, 0, 1, 'c'}},
		{Name: "connect v31 MQIsdp", Version: V31, Raw: []byte{
			0x10, 15, 0, 6, 'M', 'Q', 'I', 's', 'd', 'p', 3, 0x02, 0, 30, 0, 1, 'c'}},
		{Name: "connect v5 with props, will, user, password", Version: V5, Raw: []byte{
			0x10, 43, 0, 4, 'M', 'Q', 'T', 'T', 5, 0xEE, 0, 10,
			5, 0x11, 0, 0, 0, 60, // session expiry 60
			0, 2, 'i', 'd',
			5, 0x18, 0, 0, 0, 5, // will delay 5
			0, 3, 'w', '/', 't',
			0, 3, 'b', 'y', 'e',
			0, 1, 'u',
			0, 2, 'p', 'w'}},
		{Name: "connect reserved flag", Version: V311, Err: ErrMalformedPacket, Spec: "MQTT-3.1.2-3", Raw: []byte{
			0x10, 13, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x03, 0, 60, 0, 1, 'c'}},
		{Name: "connect will qos without will flag", Version: V311, Err: ErrMalformedPacket, Spec: "MQTT-3.1.2-13", Raw: []byte{
			0x10, 13, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x0A, 0, 60, 0, 1, 'c'}},
		{Name: "connect password without user v311", Version: V311, Err: ErrMalformedPacket, Spec: "MQTT-3.1.2-22", Raw: []byte{
			0x10, 17, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x42, 0, 60, 0, 1, 'c', 0, 2, 'p', 'w'}},
		{Name: "connect level 6", Version: V311, Err: ErrUnsupportedVersion, Spec: "MQTT-3.1.2-2", Raw: []byte{
			0x10, 13, 0, 4, 'M', 'Q', 'T', 'T', 6, 0x02, 0, 60, 0, 1, 'c'}},
		{Name: "connect client id with NUL", Version: V311, Err: ErrMalformedPacket, Spec: "MQTT-1.5.4-2", Raw: []byte{
			0x10, 13, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 60, 0, 1, 0}},
		{Name: "connect client id invalid utf8", Version: V311, Err: ErrMalformedPacket, Spec: "MQTT-1.5.4-1", Raw: []byte{
			0x10, 13, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 60, 0, 1, 0xff}},
		{Name: "connack v311 accepted", Version: V311, Raw: []byte{0x20, 2, 0, 0}},
		{Name: "connack v5 session present with props", Version: V5, Raw: []byte{
			0x20, 8, 1, 0, 5, 0x21, 0, 10, 0x24, 1}},
		{Name: "publish qos0 v311", Version: V311, Raw: []byte{0x30, 7, 0, 3, 'a', '/', 'b', 'h', 'i'}},
		{Name: "publish qos1 retain v311", Version: V311, Raw: []byte{0x33, 9, 0, 3, 'a', '/', 'b', 0, 7, 'h', 'i'}},
		{Name: "publish qos2 dup v5 props", Version: V5, Raw: []byte{
			0x3C, 18, 0, 1, 't', 0, 9, 10, 0x01, 1, 0x02, 0, 0, 0, 30, 0x23, 0, 1, 'o', 'k'}},
		{Name: "publish v5 user properties", Version: V5, Raw: []byte{
			0x30, 17, 0, 1, 't', 12, 0x26, 0, 1, 'k', 0, 1, 'v', 0x26, 0, 0, 0, 0, 'x'}},
		{Name: "publish qos3", Version: V311, Err: ErrMalformedPacket, Spec: "MQTT-3.3.1-4", Raw: []byte{0x36, 5, 0, 1, 't', 0, 1}},
		{Name: "publish dup on qos0", Version: V311, Err: ErrMalformedPacket, Spec: "MQTT-3.3.1-2", Raw: []byte{0x38, 3, 0, 1, 't'}},
		{Name: "publish packet id 0", Version: V311, Err: ErrProtocol, Spec: "MQTT-2.2.1-3", Raw: []byte{0x32, 5, 0, 1, 't', 0, 0}},
		{Name: "publish topic length beyond packet", Version: V311, Err: ErrMalformedPacket, Raw: []byte{0x30, 3, 0, 9, 't'}},
		{Name: "publish v5 topic alias 0", Version: V5, Err: ErrTopicAliasInvalid, Spec: "MQTT-3.3.2-8", Raw: []byte{
			0x30, 7, 0, 1, 't', 3, 0x23, 0, 0}},
		{Name: "publish v5 duplicate property", Version: V5, Err: ErrProtocol, Spec: "MQTT-2.2.2-2", Raw: []byte{
			0x30, 8, 0, 1, 't', 4, 0x01, 0, 0x01, 1}},
		{Name: "publish v5 property not allowed", Version: V5, Err: ErrProtocol, Raw: []byte{
			0x30, 9, 0, 1, 't', 5, 0x11, 0, 0, 0, 1}},
		{Name: "publish v5 property length beyond packet", Version: V5, Err: ErrMalformedPacket, Raw: []byte{
			0x30, 5, 0, 1, 't', 9, 0}},
		{Name: "puback", Version: V311, Raw: []byte{0x40, 2, 0, 7}},
		{Name: "puback v5 with code", Version: V5, Raw: []byte{0x40, 3, 0, 7, 0x10}},
		{Name: "pubrec v5 with reason string", Version: V5, Raw: []byte{0x50, 8, 0, 7, 0x80, 4, 0x1F, 0, 1, 'x'}},
		{Name: "pubrel", Version: V311, Raw: []byte{0x62, 2, 0, 7}},
		{Name: "pubrel wrong flags", Version: V311, Err: ErrMalformedPacket, Spec: "MQTT-3.6.1-1", Raw: []byte{0x60, 2, 0, 7}},
		{Name: "pubcomp", Version: V311, Raw: []byte{0x70, 2, 0, 7}},
		{Name: "subscribe v311 two filters", Version: V311, Raw: []byte{
			0x82, 12, 0, 1, 0, 3, 'a', '/', '#', 1, 0, 1, '+', 2}},
		{Name: "subscribe v5 options and id", Version: V5, Raw: []byte{
			0x82, 9, 0, 2, 2, 0x0B, 5, 0, 1, 't', 0x2D}},
		{Name: "subscribe wrong flags", Version: V311, Err: ErrMalformedPacket, Spec: "MQTT-3.8.1-1", Raw: []byte{
			0x80, 6, 0, 1, 0, 1, 't', 0}},
		{Name: "subscribe no filters", Version: V311, Err: ErrProtocol, Spec: "MQTT-3.8.3-3", Raw: []byte{0x82, 2, 0, 1}},
		{Name: "subscribe reserved option bits v311", Version: V311, Err: ErrMalformedPacket, Spec: "MQTT-3.8.3-4", Raw: []byte{
			0x82, 6, 0, 1, 0, 1, 't', 0x04}},
		{Name: "subscribe retain handling 3", Version: V5, Err: ErrProtocol, Raw: []byte{
			0x82, 7, 0, 1, 0, 0, 1, 't', 0x30}},
		{Name: "suback v311", Version: V311, Raw: []byte{0x90, 4, 0, 1, 1, 0x80}},
		{Name: "suback v5", Version: V5, Raw: []byte{0x90, 5, 0, 1, 0, 2, 0x87}},
		{Name: "unsubscribe v311", Version: V311, Raw: []byte{0xA2, 5, 0, 1, 0, 1, 't'}},
		{Name: "unsubscribe no filters", Version: V311, Err: ErrProtocol, Spec: "MQTT-3.10.3-2", Raw: []byte{0xA2, 2, 0, 1}},
		{Name: "unsuback v311", Version: V311, Raw: []byte{0xB0, 2, 0, 1}},
		{Name: "unsuback v5", Version: V5, Raw: []byte{0xB0, 4, 0, 1, 0, 0x11}},
		{Name: "pingreq", Version: V311, Raw: []byte{0xC0, 0}},
		{Name: "pingresp", Version: V311, Raw: []byte{0xD0, 0}},
		{Name: "pingreq with flags", Version: V311, Err: ErrMalformedPacket, Spec: "MQTT-2.2.2-2", Raw: []byte{0xC1, 0}},
		{Name: "disconnect v311", Version: V311, Raw: []byte{0xE0, 0}},
		{Name: "disconnect v5 with will", Version: V5, Raw: []byte{0xE0, 1, 0x04}},
		{Name: "disconnect v5 session expiry", Version: V5, Raw: []byte{0xE0, 7, 0x00, 5, 0x11, 0, 0, 0, 0}},
		{Name: "auth v5", Version: V5, Raw: []byte{0xF0, 7, 0x18, 5, 0x15, 0, 2, 'x', 'y'}},
		{Name: "auth bad code", Version: V5, Err: ErrProtocol, Spec: "MQTT-3.15.2-1", Raw: []byte{0xF0, 1, 0x80}},
		{Name: "auth before v5", Version: V311, Err: ErrProtocol, Raw: []byte{0xF0, 0}},
		{Name: "reserved type 0", Version: V311, Err: ErrMalformedPacket, Raw: []byte{0x00, 0}},
		{Name: "remaining length five bytes", Version: V311, Err: ErrMalformedPacket, Spec: "MQTT-1.5.5-1", Raw: []byte{
			0x30, 0xff, 0xff, 0xff, 0xff, 0x7f}},
	}
}
