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

	// order lists the identifiers of the present properties in the order
	// they were decoded or Set; the encoder writes them in that order, so a
	// forwarded message keeps its publisher's order and a reply built
	// property by property has the order Mosquitto's would (clients and
	// test suites compare bytes). nOrder counts the used entries.
	order  [maxOrder]byte
	nOrder uint8
}

// maxOrder bounds the recorded order: one entry per property identifier.
const maxOrder = 0x2B

// defaultOrder is the encoding order of present properties missing from
// the recorded order: ascending identifier, user properties last.
var defaultOrder = func() []byte {
	var ids []byte
	for id := 1; id < len(allowed); id++ {
		if allowed[id] != 0 && id != PropUser {
			ids = append(ids, byte(id))
		}
	}
	return append(ids, PropUser)
}()

// Present reports whether property id was present.
func (p *Properties) Present(id int) bool { return p.Has&(1<<uint(id)) != 0 }

// Set marks property id present; callers assign the field as well. A
// property Set for the first time is encoded after those Set before it.
func (p *Properties) Set(id int) {
	if p.Has&(1<<uint(id)) != 0 {
		return
	}
	p.Has |= 1 << uint(id)
	if int(p.nOrder) < len(p.order) {
		p.order[p.nOrder] = byte(id)
		p.nOrder++
	}
}

// Clear marks property id absent; Set again, it moves to the end.
func (p *Properties) Clear(id int) {
	if p.Has&(1<<uint(id)) == 0 {
		return
	}
	p.Has &^= 1 << uint(id)
	for i := 0; i < int(p.nOrder); i++ {
		if p.order[i] == byte(id) {
			copy(p.order[i:p.nOrder], p.order[i+1:p.nOrder])
			p.nOrder--
			return
		}
	}
}

// SetUserPosition records that the next user property (in the order of
// User) is encoded here, after the properties Set so far: user properties
// interleaved with others keep their places.
func (p *Properties) SetUserPosition() {
	p.Has |= 1 << PropUser
	if int(p.nOrder) < len(p.order) {
		p.order[p.nOrder] = PropUser
		p.nOrder++
	}
}

// SetFirst marks property id present and encodes it before all others.
func (p *Properties) SetFirst(id int) {
	p.Clear(id)
	p.Set(id)
	n := int(p.nOrder)
	if n > 0 && p.order[n-1] == byte(id) {
		copy(p.order[1:n], p.order[:n-1])
		p.order[0] = byte(id)
	}
}

// EachInOrder calls f with the identifier of each present property, in
// encoding order (without allocating, unlike Order).
func (p *Properties) EachInOrder(f func(id byte)) {
	var seen uint64
	for _, id := range p.order[:p.nOrder] {
		f(id)
		seen |= 1 << id
	}
	for _, id := range defaultOrder {
		if (p.Has&(1<<id) != 0 || id == PropUser && len(p.User) > 0) && seen&(1<<id) == 0 {
			f(id)
		}
	}
}

// Order returns the identifiers of the present properties in encoding
// order. User properties, if any, are at the position of the first one
// (PropUser); they are kept as one block.
func (p *Properties) Order() []byte {
	out := make([]byte, 0, p.nOrder+1)
	p.EachInOrder(func(id byte) { out = append(out, id) })
	return out
}

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
		if id == PropUser {
			p.SetUserPosition()
		} else {
			p.Set(id)
		}
		switch id {
		case PropPayloadFormat:
			// Values other than 0 and 1 are passed on, as Mosquitto does:
			// the indicator is advice for the receiver, not for the broker.
			p.PayloadFormat, err = pr.u8()
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

// appendProps appends the property block (length prefix and content):
// first the properties in the order they were decoded or Set, then any
// others present in ascending identifier order.
func (p *Properties) appendProps(dst []byte) []byte {
	n := p.size()
	dst = AppendVarInt(dst, n)
	if n == 0 {
		return dst
	}
	var done uint64
	user := p.User // user properties not yet written
	for _, id := range p.order[:p.nOrder] {
		if id == PropUser {
			n := nextUserLen(user)
			dst, user = append(dst, user[:n]...), user[n:]
			continue
		}
		dst = p.appendOne(dst, id)
		done |= 1 << id
	}
	for _, id := range defaultOrder {
		if id == PropUser {
			dst = append(dst, user...)
		} else if done&(1<<id) == 0 {
			dst = p.appendOne(dst, id)
		}
	}
	return dst
}

// nextUserLen is the encoded length of the first user property in b (the
// User field's format), or len(b) if b does not hold a whole one.
func nextUserLen(b []byte) int {
	n := 1
	for range 2 {
		if len(b) < n+2 {
			return len(b)
		}
		n += 2 + (int(b[n])<<8 | int(b[n+1]))
	}
	return min(n, len(b))
}

// appendOne appends property id if present (for PropUser: the user
// properties, if any; for PropSubscriptionID: every identifier).
func (p *Properties) appendOne(dst []byte, id byte) []byte {
	if id == PropUser {
		return append(dst, p.User...)
	}
	if !p.Present(int(id)) {
		return dst
	}
	switch id {
	case PropPayloadFormat:
		dst = append(dst, PropPayloadFormat, p.PayloadFormat)
	case PropMessageExpiry:
		dst = appendU32(append(dst, PropMessageExpiry), p.MessageExpiry)
	case PropContentType:
		dst = appendBin(append(dst, PropContentType), p.ContentType)
	case PropResponseTopic:
		dst = appendBin(append(dst, PropResponseTopic), p.ResponseTopic)
	case PropCorrelationData:
		dst = appendBin(append(dst, PropCorrelationData), p.CorrelationData)
	case PropSubscriptionID:
		for _, sid := range p.SubscriptionIDs {
			dst = AppendVarInt(append(dst, PropSubscriptionID), int(sid))
		}
	case PropSessionExpiry:
		dst = appendU32(append(dst, PropSessionExpiry), p.SessionExpiry)
	case PropAssignedClientID:
		dst = appendBin(append(dst, PropAssignedClientID), p.AssignedClientID)
	case PropServerKeepAlive:
		dst = appendU16(append(dst, PropServerKeepAlive), p.ServerKeepAlive)
	case PropAuthMethod:
		dst = appendBin(append(dst, PropAuthMethod), p.AuthMethod)
	case PropAuthData:
		dst = appendBin(append(dst, PropAuthData), p.AuthData)
	case PropRequestProblemInfo:
		dst = append(dst, PropRequestProblemInfo, p.RequestProblemInfo)
	case PropWillDelay:
		dst = appendU32(append(dst, PropWillDelay), p.WillDelay)
	case PropRequestResponseInfo:
		dst = append(dst, PropRequestResponseInfo, p.RequestResponseInfo)
	case PropResponseInfo:
		dst = appendBin(append(dst, PropResponseInfo), p.ResponseInfo)
	case PropServerReference:
		dst = appendBin(append(dst, PropServerReference), p.ServerReference)
	case PropReasonString:
		dst = appendBin(append(dst, PropReasonString), p.ReasonString)
	case PropReceiveMaximum:
		dst = appendU16(append(dst, PropReceiveMaximum), p.ReceiveMaximum)
	case PropTopicAliasMaximum:
		dst = appendU16(append(dst, PropTopicAliasMaximum), p.TopicAliasMaximum)
	case PropTopicAlias:
		dst = appendU16(append(dst, PropTopicAlias), p.TopicAlias)
	case PropMaximumQoS:
		dst = append(dst, PropMaximumQoS, p.MaximumQoS)
	case PropRetainAvailable:
		dst = append(dst, PropRetainAvailable, p.RetainAvailable)
	case PropMaximumPacketSize:
		dst = appendU32(append(dst, PropMaximumPacketSize), p.MaximumPacketSize)
	case PropWildcardSubAvailable:
		dst = append(dst, PropWildcardSubAvailable, p.WildcardSubAvailable)
	case PropSubIDAvailable:
		dst = append(dst, PropSubIDAvailable, p.SubIDAvailable)
	case PropSharedSubAvailable:
		dst = append(dst, PropSharedSubAvailable, p.SharedSubAvailable)
	}
	return dst
}
