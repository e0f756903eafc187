package packet

// Property identifiers of MQTT 5.0 §2.2.2.2.
const (
	PropPayloadFormat        = 0x01
	PropMessageExpiry        = 0x02
	PropContentType          = 0x03
	PropResponseTopic        = 0x08
	PropCorrelationData      = 0x09
	PropSubscriptionID       = 0x0B
	PropSessionExpiry        = 0x11
	PropAssignedClientID     = 0x12
	PropServerKeepAlive      = 0x13
	PropAuthMethod           = 0x15
	PropAuthData             = 0x16
	PropRequestProblemInfo   = 0x17
	PropWillDelay            = 0x18
	PropRequestResponseInfo  = 0x19
	PropResponseInfo         = 0x1A
	PropServerReference      = 0x1C
	PropReasonString         = 0x1F
	PropReceiveMaximum       = 0x21
	PropTopicAliasMaximum    = 0x22
	PropTopicAlias           = 0x23
	PropMaximumQoS           = 0x24
	PropRetainAvailable      = 0x25
	PropUser                 = 0x26
	PropMaximumPacketSize    = 0x27
	PropWildcardSubAvailable = 0x28
	PropSubIDAvailable       = 0x29
	PropSharedSubAvailable   = 0x2A
)

// willContext stands for the will properties inside CONNECT, which allow a
// different set of properties than CONNECT itself.
const willContext Type = 0

// allowed lists, per property, the packet types that may carry it
// (MQTT 5.0 §2.2.2.2); a property elsewhere is a protocol error.
var allowed = func() [0x2B]uint32 {
	var a [0x2B]uint32
	set := func(id int, ts ...Type) {
		for _, t := range ts {
			a[id] |= 1 << t
		}
	}
	set(PropPayloadFormat, PUBLISH, willContext)
	set(PropMessageExpiry, PUBLISH, willContext)
	set(PropContentType, PUBLISH, willContext)
	set(PropResponseTopic, PUBLISH, willContext)
	set(PropCorrelationData, PUBLISH, willContext)
	set(PropSubscriptionID, PUBLISH, SUBSCRIBE)
	set(PropSessionExpiry, CONNECT, CONNACK, DISCONNECT)
	set(PropAssignedClientID, CONNACK)
	set(PropServerKeepAlive, CONNACK)
	set(PropAuthMethod, CONNECT, CONNACK, AUTH)
	set(PropAuthData, CONNECT, CONNACK, AUTH)
	set(PropRequestProblemInfo, CONNECT)
	set(PropWillDelay, willContext)
	set(PropRequestResponseInfo, CONNECT)
	set(PropResponseInfo, CONNACK)
	set(PropServerReference, CONNACK, DISCONNECT)
	set(PropReasonString, CONNACK, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK, DISCONNECT, AUTH)
	set(PropReceiveMaximum, CONNECT, CONNACK)
	set(PropTopicAliasMaximum, CONNECT, CONNACK)
	set(PropTopicAlias, PUBLISH)
	set(PropMaximumQoS, CONNACK)
	set(PropRetainAvailable, CONNACK)
	set(PropUser, CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBSCRIBE, SUBACK,
		UNSUBSCRIBE, UNSUBACK, DISCONNECT, AUTH, willContext)
	set(PropMaximumPacketSize, CONNECT, CONNACK)
	set(PropWildcardSubAvailable, CONNACK)
	set(PropSubIDAvailable, CONNACK)
	set(PropSharedSubAvailable, CONNACK)
	return a
}()

// Properties holds the MQTT 5 properties of one packet. Has records which
// were present, by property identifier, since a zero value and an absent
// property mean different things (a Message Expiry of 0 is not "no expiry").
// Byte-slice fields alias the decoded buffer.
type Properties struct {
	Has uint64 // bit n set: property n present

	PayloadFormat        byte
	MessageExpiry        uint32
	ContentType          []byte
	ResponseTopic        []byte
	CorrelationData      []byte
	SubscriptionIDs      []uint32
	SessionExpiry        uint32
	AssignedClientID     []byte
	ServerKeepAlive      uint16
	AuthMethod           []byte
	AuthData             []byte
	RequestProblemInfo   byte
	WillDelay            uint32
	RequestResponseInfo  byte
	ResponseInfo         []byte
	ServerReference      []byte
	ReasonString         []byte
	ReceiveMaximum       uint16
	TopicAliasMaximum    uint16
	TopicAlias           uint16
	MaximumQoS           byte
	RetainAvailable      byte
	MaximumPacketSize    uint32
	WildcardSubAvailable byte
	SubIDAvailable       byte
	SharedSubAvailable   byte

	// User holds the user properties in their encoded form (each entry is
	// 0x26, key string, value string) so that they pass through the broker
	// verbatim and in order without being decoded into a slice of pairs.
	User []byte
}

// Present reports whether property id was present.
func (p *Properties) Present(id int) bool { return p.Has&(1<<uint(id)) != 0 }

// Set marks property id present; callers assign the field as well.
func (p *Properties) Set(id int) { p.Has |= 1 << uint(id) }

// Clear marks property id absent.
func (p *Properties) Clear(id int) { p.Has &^= 1 << uint(id) }

// Reset empties p but keeps the capacity of SubscriptionIDs for reuse.
func (p *Properties) Reset() {
	ids := p.SubscriptionIDs[:0]
	*p = Properties{SubscriptionIDs: ids}
}

// AddUser appends a user property.
func (p *Properties) AddUser(key, value string) {
	p.User = append(p.User, PropUser)
	p.User = appendStr(p.User, key)
	p.User = appendStr(p.User, value)
}

// UserPairs decodes the user properties into key/value pairs, in order.
func (p *Properties) UserPairs() [][2]string {
	var out [][2]string
	r := reader{b: p.User}
	for r.left() > 0 {
		if _, err := r.u8(); err != nil {
			return out
		}
		k, err := r.bin()
		if err != nil {
			return out
		}
		v, err := r.bin()
		if err != nil {
			return out
		}
		out = append(out, [2]string{string(k), string(v)})
	}
	return out
}

// decodeProps reads a property block for packet type t into p (which the
// caller has reset). Duplicates, properties not allowed on t and
// out-of-range values are protocol errors [MQTT-2.2.2-2].
func decodeProps(r *reader, t Type, p *Properties) error {
	n, err := r.varint()
	if err != nil {
		return err
	}
	if n > r.left() {
		return ErrMalformedPacket.With("property length exceeds packet")
	}
	end := r.i + n
	pr := reader{b: r.b[:end], i: r.i}
	r.i = end
	userStart, userEnd := -1, -1
	var userCopy []byte
	for pr.left() > 0 {
		start := pr.i
		id, err := pr.varint()
		if err != nil {
			return err
		}
		if id >= len(allowed) || allowed[id] == 0 {
			return ErrMalformedPacket.With("unknown property identifier")
		}
		if allowed[id]&(1<<t) == 0 {
			return ErrProtocol.With("property not allowed on this packet")
		}
		if id != PropUser && !(id == PropSubscriptionID && t == PUBLISH) && p.Present(id) {
			return ErrProtocol.With("property included more than once")
		}
		p.Set(id)
		switch id {
		case PropPayloadFormat:
			p.PayloadFormat, err = pr.u8()
			if err == nil && p.PayloadFormat > 1 {
				err = ErrProtocol.With("payload format indicator not 0 or 1")
			}
		case PropMessageExpiry:
			p.MessageExpiry, err = pr.u32()
		case PropContentType:
			p.ContentType, err = pr.str()
		case PropResponseTopic:
			p.ResponseTopic, err = pr.str()
		case PropCorrelationData:
			p.CorrelationData, err = pr.bin()
		case PropSubscriptionID:
			var v int
			v, err = pr.varint()
			if err == nil && v == 0 {
				err = ErrProtocol.With("subscription identifier 0") // MQTT 5.0 §3.8.2.1.2: 0 is a protocol error
			}
			p.SubscriptionIDs = append(p.SubscriptionIDs, uint32(v))
		case PropSessionExpiry:
			p.SessionExpiry, err = pr.u32()
		case PropAssignedClientID:
			p.AssignedClientID, err = pr.str()
		case PropServerKeepAlive:
			p.ServerKeepAlive, err = pr.u16()
		case PropAuthMethod:
			p.AuthMethod, err = pr.str()
		case PropAuthData:
			p.AuthData, err = pr.bin()
		case PropRequestProblemInfo:
			p.RequestProblemInfo, err = pr.u8()
			if err == nil && p.RequestProblemInfo > 1 {
				err = ErrProtocol.With("request problem information not 0 or 1")
			}
		case PropWillDelay:
			p.WillDelay, err = pr.u32()
		case PropRequestResponseInfo:
			p.RequestResponseInfo, err = pr.u8()
			if err == nil && p.RequestResponseInfo > 1 {
				err = ErrProtocol.With("request response information not 0 or 1")
			}
		case PropResponseInfo:
			p.ResponseInfo, err = pr.str()
		case PropServerReference:
			p.ServerReference, err = pr.str()
		case PropReasonString:
			p.ReasonString, err = pr.str()
		case PropReceiveMaximum:
			p.ReceiveMaximum, err = pr.u16()
			if err == nil && p.ReceiveMaximum == 0 {
				err = ErrProtocol.With("receive maximum 0")
			}
		case PropTopicAliasMaximum:
			p.TopicAliasMaximum, err = pr.u16()
		case PropTopicAlias:
			p.TopicAlias, err = pr.u16()
			if err == nil && p.TopicAlias == 0 {
				err = ErrTopicAliasInvalid.With("topic alias 0") // [MQTT-3.3.2-8]
			}
		case PropMaximumQoS:
			p.MaximumQoS, err = pr.u8()
			if err == nil && p.MaximumQoS > 1 {
				err = ErrProtocol.With("maximum QoS not 0 or 1")
			}
		case PropRetainAvailable:
			p.RetainAvailable, err = pr.u8()
		case PropUser:
			if _, err = pr.str(); err == nil {
				_, err = pr.str()
			}
			if err == nil {
				switch {
				case userCopy != nil:
					userCopy = append(userCopy, pr.b[start:pr.i]...)
				case userStart < 0:
					userStart, userEnd = start, pr.i
				case userEnd == start:
					userEnd = pr.i
				default:
					// Not adjacent to the earlier ones: copy (rare).
					userCopy = append(append([]byte(nil), pr.b[userStart:userEnd]...), pr.b[start:pr.i]...)
				}
			}
		case PropMaximumPacketSize:
			p.MaximumPacketSize, err = pr.u32()
			if err == nil && p.MaximumPacketSize == 0 {
				err = ErrProtocol.With("maximum packet size 0")
			}
		case PropWildcardSubAvailable:
			p.WildcardSubAvailable, err = pr.u8()
		case PropSubIDAvailable:
			p.SubIDAvailable, err = pr.u8()
		case PropSharedSubAvailable:
			p.SharedSubAvailable, err = pr.u8()
		}
		if err != nil {
			return err
		}
	}
	switch {
	case userCopy != nil:
		p.User = userCopy
	case userStart >= 0:
		p.User = pr.b[userStart:userEnd:userEnd]
	}
	return nil
}

// size is the encoded size of the property block's content (without its
// length prefix).
func (p *Properties) size() int {
	if p == nil || (p.Has == 0 && len(p.User) == 0) {
		return 0
	}
	n := len(p.User)
	has := p.Present
	if has(PropPayloadFormat) {
		n += 2
	}
	if has(PropMessageExpiry) {
		n += 5
	}
	if has(PropContentType) {
		n += 3 + len(p.ContentType)
	}
	if has(PropResponseTopic) {
		n += 3 + len(p.ResponseTopic)
	}
	if has(PropCorrelationData) {
		n += 3 + len(p.CorrelationData)
	}
	if has(PropSubscriptionID) {
		for _, id := range p.SubscriptionIDs {
			n += 1 + VarIntLen(int(id))
		}
	}
	if has(PropSessionExpiry) {
		n += 5
	}
	if has(PropAssignedClientID) {
		n += 3 + len(p.AssignedClientID)
	}
	if has(PropServerKeepAlive) {
		n += 3
	}
	if has(PropAuthMethod) {
		n += 3 + len(p.AuthMethod)
	}
	if has(PropAuthData) {
		n += 3 + len(p.AuthData)
	}
	if has(PropRequestProblemInfo) {
		n += 2
	}
	if has(PropWillDelay) {
		n += 5
	}
	if has(PropRequestResponseInfo) {
		n += 2
	}
	if has(PropResponseInfo) {
		n += 3 + len(p.ResponseInfo)
	}
	if has(PropServerReference) {
		n += 3 + len(p.ServerReference)
	}
	if has(PropReasonString) {
		n += 3 + len(p.ReasonString)
	}
	if has(PropReceiveMaximum) {
		n += 3
	}
	if has(PropTopicAliasMaximum) {
		n += 3
	}
	if has(PropTopicAlias) {
		n += 3
	}
	if has(PropMaximumQoS) {
		n += 2
	}
	if has(PropRetainAvailable) {
		n += 2
	}
	if has(PropMaximumPacketSize) {
		n += 5
	}
	if has(PropWildcardSubAvailable) {
		n += 2
	}
	if has(PropSubIDAvailable) {
		n += 2
	}
	if has(PropSharedSubAvailable) {
		n += 2
	}
	return n
}

// sizeWithLen is the property block including its length prefix.
func (p *Properties) sizeWithLen() int {
	n := p.size()
	return VarIntLen(n) + n
}

// appendProps appends the property block (length prefix and content).
func (p *Properties) appendProps(dst []byte) []byte {
	n := p.size()
	dst = AppendVarInt(dst, n)
	if n == 0 {
		return dst
	}
	has := p.Present
	if has(PropPayloadFormat) {
		dst = append(dst, PropPayloadFormat, p.PayloadFormat)
	}
	if has(PropMessageExpiry) {
		dst = appendU32(append(dst, PropMessageExpiry), p.MessageExpiry)
	}
	if has(PropContentType) {
		dst = appendBin(append(dst, PropContentType), p.ContentType)
	}
	if has(PropResponseTopic) {
		dst = appendBin(append(dst, PropResponseTopic), p.ResponseTopic)
	}
	if has(PropCorrelationData) {
		dst = appendBin(append(dst, PropCorrelationData), p.CorrelationData)
	}
	if has(PropSubscriptionID) {
		for _, id := range p.SubscriptionIDs {
			dst = AppendVarInt(append(dst, PropSubscriptionID), int(id))
		}
	}
	if has(PropSessionExpiry) {
		dst = appendU32(append(dst, PropSessionExpiry), p.SessionExpiry)
	}
	if has(PropAssignedClientID) {
		dst = appendBin(append(dst, PropAssignedClientID), p.AssignedClientID)
	}
	if has(PropServerKeepAlive) {
		dst = appendU16(append(dst, PropServerKeepAlive), p.ServerKeepAlive)
	}
	if has(PropAuthMethod) {
		dst = appendBin(append(dst, PropAuthMethod), p.AuthMethod)
	}
	if has(PropAuthData) {
		dst = appendBin(append(dst, PropAuthData), p.AuthData)
	}
	if has(PropRequestProblemInfo) {
		dst = append(dst, PropRequestProblemInfo, p.RequestProblemInfo)
	}
	if has(PropWillDelay) {
		dst = appendU32(append(dst, PropWillDelay), p.WillDelay)
	}
	if has(PropRequestResponseInfo) {
		dst = append(dst, PropRequestResponseInfo, p.RequestResponseInfo)
	}
	if has(PropResponseInfo) {
		dst = appendBin(append(dst, PropResponseInfo), p.ResponseInfo)
	}
	if has(PropServerReference) {
		dst = appendBin(append(dst, PropServerReference), p.ServerReference)
	}
	if has(PropReasonString) {
		dst = appendBin(append(dst, PropReasonString), p.ReasonString)
	}
	if has(PropReceiveMaximum) {
		dst = appendU16(append(dst, PropReceiveMaximum), p.ReceiveMaximum)
	}
	if has(PropTopicAliasMaximum) {
		dst = appendU16(append(dst, PropTopicAliasMaximum), p.TopicAliasMaximum)
	}
	if has(PropTopicAlias) {
		dst = appendU16(append(dst, PropTopicAlias), p.TopicAlias)
	}
	if has(PropMaximumQoS) {
		dst = append(dst, PropMaximumQoS, p.MaximumQoS)
	}
	if has(PropRetainAvailable) {
		dst = append(dst, PropRetainAvailable, p.RetainAvailable)
	}
	if has(PropMaximumPacketSize) {
		dst = appendU32(append(dst, PropMaximumPacketSize), p.MaximumPacketSize)
	}
	if has(PropWildcardSubAvailable) {
		dst = append(dst, PropWildcardSubAvailable, p.WildcardSubAvailable)
	}
	if has(PropSubIDAvailable) {
		dst = append(dst, PropSubIDAvailable, p.SubIDAvailable)
	}
	if has(PropSharedSubAvailable) {
		dst = append(dst, PropSharedSubAvailable, p.SharedSubAvailable)
	}
	return append(dst, p.User...)
}
