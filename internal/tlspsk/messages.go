package tlspsk

// Handshake messages: parsers that check every length before they look
// further, and the builders of the messages this package sends.

// Handshake message types.
const (
	typeClientHello         uint8 = 1
	typeServerHello         uint8 = 2
	typeNewSessionTicket    uint8 = 4
	typeEndOfEarlyData      uint8 = 5
	typeEncryptedExtensions uint8 = 8
	typeCertificate         uint8 = 11
	typeServerKeyExchange   uint8 = 12
	typeCertificateRequest  uint8 = 13
	typeServerHelloDone     uint8 = 14
	typeCertificateVerify   uint8 = 15
	typeClientKeyExchange   uint8 = 16
	typeFinished            uint8 = 20
	typeKeyUpdate           uint8 = 24
	typeMessageHash         uint8 = 254
)

// Extension types.
const (
	extServerName          uint16 = 0
	extSupportedGroups     uint16 = 10
	extPointFormats        uint16 = 11
	extSignatureAlgorithms uint16 = 13
	extALPN                uint16 = 16
	extEncryptThenMAC      uint16 = 22
	extExtendedMasterSec   uint16 = 23
	extSessionTicket       uint16 = 35
	extPreSharedKey        uint16 = 41
	extEarlyData           uint16 = 42
	extSupportedVersions   uint16 = 43
	extCookie              uint16 = 44
	extPSKModes            uint16 = 45
	extKeyShare            uint16 = 51
	extRenegotiationInfo   uint16 = 0xff01
)

// pskDHEKE is the psk_dhe_ke key exchange mode (RFC 8446 §4.2.9).
const (
	pskKE    uint8 = 0
	pskDHEKE uint8 = 1
)

// maxHandshake bounds one handshake message: enough for any ClientHello a
// PSK client sends (identities are at most 2^16 bytes), far below what
// the 24-bit length could claim.
const maxHandshake = 1 << 17

// helloRetryRandom is the ServerHello.random of a HelloRetryRequest
// (RFC 8446 §4.1.3): SHA-256 of "HelloRetryRequest".
var helloRetryRandom = []byte{
	0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
	0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
}

// downgradeTLS12 ends the ServerHello.random of a TLS 1.3-capable server
// that negotiates TLS 1.2 (RFC 8446 §4.1.3).
var downgradeTLS12 = []byte("DOWNGRD\x01")

type keyShare struct {
	group uint16
	data  []byte
}

type pskIdentity struct {
	identity []byte
	age      uint32
}

// clientHello is a parsed ClientHello. Slices alias raw.
type clientHello struct {
	raw               []byte // the whole message, header included
	version           uint16
	random            []byte
	sessionID         []byte
	suites            []uint16
	compression       []byte
	serverName        string
	supportedVersions []uint16
	groups            []uint16
	hasGroups         bool
	pointFormats      []byte
	hasPointFormats   bool
	keyShares         []keyShare
	hasKeyShare       bool
	pskModes          []byte
	identities        []pskIdentity
	binders           [][]byte
	bindersAt         int // offset in raw of the binders vector (its length field)
	earlyData         bool
	ems               bool
	hasReneg          bool
	renegInfo         []byte
	alpn              []string
	cookie            []byte
	hasCookie         bool
}

func (ch *clientHello) offersSuite(id uint16) bool {
	for _, s := range ch.suites {
		if s == id {
			return true
		}
	}
	return false
}

// offersVersion reports whether the client offers v; without
// supported_versions only legacy_version counts (TLS 1.2 at most).
func (ch *clientHello) offersVersion(v uint16) bool {
	if ch.supportedVersions == nil {
		return v == VersionTLS12 && ch.version >= VersionTLS12
	}
	for _, sv := range ch.supportedVersions {
		if sv == v {
			return true
		}
	}
	return false
}

func decodeErr(what string) *Error { return errorf(AlertDecodeError, "malformed %s", what) }

// parseClientHello parses a whole ClientHello message (4-byte header
// included).
func parseClientHello(msg []byte) (*clientHello, *Error) {
	r := reader{b: msg}
	if r.u8() != typeClientHello || r.u24() != len(msg)-4 || !r.ok() {
		return nil, decodeErr("ClientHello header")
	}
	ch := &clientHello{raw: msg}
	ch.version = r.u16()
	ch.random = r.bytes(32)
	ch.sessionID = r.vec8()
	cs := r.vec16()
	ch.compression = r.vec8()
	if !r.ok() || len(ch.sessionID) > 32 || len(cs)%2 != 0 || len(cs) == 0 || len(ch.compression) == 0 {
		return nil, decodeErr("ClientHello")
	}
	ch.suites = make([]uint16, 0, len(cs)/2)
	for i := 0; i < len(cs); i += 2 {
		ch.suites = append(ch.suites, uint16(cs[i])<<8|uint16(cs[i+1]))
	}
	if len(r.b) == 0 {
		return ch, nil // no extensions: a TLS 1.2 (or older) client
	}
	extStart := len(msg) - len(r.b)
	exts := r.vec16()
	if !r.done() {
		return nil, decodeErr("ClientHello extensions")
	}
	er := reader{b: exts}
	seen := make(map[uint16]bool)
	for len(er.b) > 0 {
		typ := er.u16()
		data := er.vec16()
		if !er.ok() {
			return nil, decodeErr("ClientHello extension")
		}
		if seen[typ] {
			return nil, errorf(AlertIllegalParameter, "ClientHello has extension %d twice", typ)
		}
		seen[typ] = true
		if typ == extPreSharedKey && len(er.b) != 0 {
			// RFC 8446 §4.2.11: pre_shared_key MUST be the last extension.
			return nil, errorf(AlertIllegalParameter, "pre_shared_key is not the last extension of the ClientHello")
		}
		// Offset of data within msg, for the binders.
		dataAt := extStart + 2 + (len(exts) - len(er.b)) - len(data)
		if err := ch.parseExtension(typ, data, dataAt); err != nil {
			return nil, err
		}
	}
	return ch, nil
}

func (ch *clientHello) parseExtension(typ uint16, data []byte, dataAt int) *Error {
	r := reader{b: data}
	switch typ {
	case extServerName:
		list := reader{b: r.vec16()}
		if !r.done() {
			return decodeErr("server_name")
		}
		for len(list.b) > 0 {
			nt := list.u8()
			name := list.vec16()
			if !list.ok() {
				return decodeErr("server_name")
			}
			if nt == 0 && ch.serverName == "" {
				ch.serverName = string(name)
			}
		}
	case extSupportedVersions:
		v := r.vec8()
		if !r.done() || len(v)%2 != 0 || len(v) == 0 {
			return decodeErr("supported_versions")
		}
		ch.supportedVersions = make([]uint16, 0, len(v)/2)
		for i := 0; i < len(v); i += 2 {
			ch.supportedVersions = append(ch.supportedVersions, uint16(v[i])<<8|uint16(v[i+1]))
		}
	case extSupportedGroups:
		v := r.vec16()
		if !r.done() || len(v)%2 != 0 {
			return decodeErr("supported_groups")
		}
		ch.hasGroups = true
		ch.groups = make([]uint16, 0, len(v)/2)
		for i := 0; i < len(v); i += 2 {
			ch.groups = append(ch.groups, uint16(v[i])<<8|uint16(v[i+1]))
		}
	case extPointFormats:
		ch.pointFormats = r.vec8()
		if !r.done() || len(ch.pointFormats) == 0 {
			return decodeErr("ec_point_formats")
		}
		ch.hasPointFormats = true
	case extKeyShare:
		list := reader{b: r.vec16()}
		if !r.done() {
			return decodeErr("key_share")
		}
		ch.hasKeyShare = true
		for len(list.b) > 0 {
			g := list.u16()
			k := list.vec16()
			if !list.ok() || len(k) == 0 {
				return decodeErr("key_share")
			}
			for _, ks := range ch.keyShares {
				if ks.group == g {
					// RFC 8446 §4.2.8: no two shares of one group.
					return errorf(AlertIllegalParameter, "key_share has two shares of group %d", g)
				}
			}
			ch.keyShares = append(ch.keyShares, keyShare{group: g, data: k})
		}
	case extPSKModes:
		ch.pskModes = r.vec8()
		if !r.done() || len(ch.pskModes) == 0 {
			return decodeErr("psk_key_exchange_modes")
		}
	case extPreSharedKey:
		ids := reader{b: r.vec16()}
		bindersAt := dataAt + (len(data) - len(r.b))
		bs := reader{b: r.vec16()}
		if !r.done() || len(ids.b) == 0 || len(bs.b) == 0 {
			return decodeErr("pre_shared_key")
		}
		for len(ids.b) > 0 {
			id := ids.vec16()
			age := ids.u32()
			if !ids.ok() || len(id) == 0 {
				return decodeErr("pre_shared_key identity")
			}
			ch.identities = append(ch.identities, pskIdentity{identity: id, age: age})
		}
		for len(bs.b) > 0 {
			b := bs.vec8()
			if !bs.ok() || len(b) < 32 {
				return decodeErr("pre_shared_key binder")
			}
			ch.binders = append(ch.binders, b)
		}
		if len(ch.binders) != len(ch.identities) {
			return errorf(AlertIllegalParameter, "pre_shared_key has %d identities but %d binders", len(ch.identities), len(ch.binders))
		}
		ch.bindersAt = bindersAt
	case extEarlyData:
		if len(data) != 0 {
			return decodeErr("early_data")
		}
		ch.earlyData = true
	case extExtendedMasterSec:
		if len(data) != 0 {
			return decodeErr("extended_master_secret")
		}
		ch.ems = true
	case extRenegotiationInfo:
		ch.renegInfo = r.vec8()
		if !r.done() {
			return decodeErr("renegotiation_info")
		}
		ch.hasReneg = true
	case extALPN:
		list := reader{b: r.vec16()}
		if !r.done() || len(list.b) == 0 {
			return decodeErr("application_layer_protocol_negotiation")
		}
		for len(list.b) > 0 {
			p := list.vec8()
			if !list.ok() || len(p) == 0 {
				return decodeErr("application_layer_protocol_negotiation")
			}
			ch.alpn = append(ch.alpn, string(p))
		}
	case extCookie:
		ch.cookie = r.vec16()
		if !r.done() || len(ch.cookie) == 0 {
			return decodeErr("cookie")
		}
		ch.hasCookie = true
	}
	return nil
}

// serverHello is a parsed ServerHello or HelloRetryRequest.
type serverHello struct {
	raw              []byte
	version          uint16
	random           []byte
	sessionID        []byte
	suite            uint16
	compression      uint8
	supportedVersion uint16
	keyShare         keyShare // in a HelloRetryRequest only group is set
	hasKeyShare      bool
	selectedGroup    uint16 // HelloRetryRequest
	pskSelected      int    // -1 when absent
	cookie           []byte
	ems              bool
	hasReneg         bool
	renegInfo        []byte
	hasPointFormats  bool
	alpn             string
}

func (sh *serverHello) isHRR() bool { return string(sh.random) == string(helloRetryRandom) }

func parseServerHello(msg []byte) (*serverHello, *Error) {
	r := reader{b: msg}
	if r.u8() != typeServerHello || r.u24() != len(msg)-4 || !r.ok() {
		return nil, decodeErr("ServerHello header")
	}
	sh := &serverHello{raw: msg, pskSelected: -1}
	sh.version = r.u16()
	sh.random = r.bytes(32)
	sh.sessionID = r.vec8()
	sh.suite = r.u16()
	sh.compression = r.u8()
	if !r.ok() || len(sh.sessionID) > 32 {
		return nil, decodeErr("ServerHello")
	}
	if len(r.b) == 0 {
		return sh, nil
	}
	exts := reader{b: r.vec16()}
	if !r.done() {
		return nil, decodeErr("ServerHello extensions")
	}
	hrr := sh.isHRR()
	var seen [4]uint16
	nseen := 0
	for len(exts.b) > 0 {
		typ := exts.u16()
		d := reader{b: exts.vec16()}
		if !exts.ok() {
			return nil, decodeErr("ServerHello extension")
		}
		for _, s := range seen[:min(nseen, len(seen))] {
			if s == typ {
				return nil, errorf(AlertIllegalParameter, "ServerHello has extension %d twice", typ)
			}
		}
		if nseen < len(seen) {
			seen[nseen] = typ
		}
		nseen++
		switch typ {
		case extSupportedVersions:
			sh.supportedVersion = d.u16()
		case extKeyShare:
			sh.hasKeyShare = true
			if hrr {
				sh.selectedGroup = d.u16()
			} else {
				sh.keyShare.group = d.u16()
				sh.keyShare.data = d.vec16()
				if len(sh.keyShare.data) == 0 {
					d.bad = true
				}
			}
		case extPreSharedKey:
			sh.pskSelected = int(d.u16())
		case extCookie:
			sh.cookie = d.vec16()
			if len(sh.cookie) == 0 {
				d.bad = true
			}
		case extExtendedMasterSec:
			sh.ems = true
		case extRenegotiationInfo:
			sh.hasReneg = true
			sh.renegInfo = d.vec8()
		case extPointFormats:
			sh.hasPointFormats = true
			if len(d.vec8()) == 0 {
				d.bad = true
			}
		case extALPN:
			list := reader{b: d.vec16()}
			p := list.vec8()
			if !list.done() || len(p) == 0 {
				d.bad = true
			}
			sh.alpn = string(p)
		default:
			d.b = nil // an extension the client did not offer; checked by the caller
		}
		if !d.done() {
			return nil, decodeErr("ServerHello extension")
		}
	}
	return sh, nil
}

// encryptedExtensions is the part of EncryptedExtensions a PSK client
// uses.
type encryptedExtensions struct {
	alpn      string
	earlyData bool
}

func parseEncryptedExtensions(msg []byte) (*encryptedExtensions, *Error) {
	r := reader{b: msg}
	if r.u8() != typeEncryptedExtensions || r.u24() != len(msg)-4 {
		return nil, decodeErr("EncryptedExtensions header")
	}
	exts := reader{b: r.vec16()}
	if !r.done() {
		return nil, decodeErr("EncryptedExtensions")
	}
	ee := &encryptedExtensions{}
	for len(exts.b) > 0 {
		typ := exts.u16()
		d := reader{b: exts.vec16()}
		if !exts.ok() {
			return nil, decodeErr("EncryptedExtensions")
		}
		switch typ {
		case extALPN:
			list := reader{b: d.vec16()}
			p := list.vec8()
			if !d.done() || !list.done() || len(p) == 0 {
				return nil, decodeErr("EncryptedExtensions ALPN")
			}
			ee.alpn = string(p)
		case extEarlyData:
			ee.earlyData = true
		case extPreSharedKey, extKeyShare, extSupportedVersions, extPSKModes, extCookie:
			// RFC 8446 §4.2: these may not appear in EncryptedExtensions.
			return nil, errorf(AlertIllegalParameter, "EncryptedExtensions carries extension %d", typ)
		}
	}
	return ee, nil
}

// parseBody checks a message's type and length field and returns its body.
func parseBody(msg []byte, typ uint8, what string) ([]byte, *Error) {
	r := reader{b: msg}
	if r.u8() != typ || r.u24() != len(msg)-4 || !r.ok() {
		return nil, decodeErr(what)
	}
	return r.b, nil
}

// serverKeyExchange is a TLS 1.2 PSK or ECDHE_PSK ServerKeyExchange
// (RFC 4279 §2, RFC 5489 §2).
type serverKeyExchange struct {
	hint  []byte
	group uint16
	point []byte
}

func parseServerKeyExchange(msg []byte, k kx) (*serverKeyExchange, *Error) {
	body, err := parseBody(msg, typeServerKeyExchange, "ServerKeyExchange")
	if err != nil {
		return nil, err
	}
	r := reader{b: body}
	ske := &serverKeyExchange{hint: r.vec16()}
	if k == kxECDHEPSK {
		if r.u8() != 3 { // named_curve
			if r.ok() {
				return nil, errorf(AlertIllegalParameter, "ServerKeyExchange: not a named curve")
			}
		}
		ske.group = r.u16()
		ske.point = r.vec8()
		if len(ske.point) == 0 {
			r.bad = true
		}
	}
	if !r.done() {
		return nil, decodeErr("ServerKeyExchange")
	}
	return ske, nil
}

// clientKeyExchange is a TLS 1.2 PSK or ECDHE_PSK ClientKeyExchange.
type clientKeyExchange struct {
	identity []byte
	point    []byte
}

func parseClientKeyExchange(msg []byte, k kx) (*clientKeyExchange, *Error) {
	body, err := parseBody(msg, typeClientKeyExchange, "ClientKeyExchange")
	if err != nil {
		return nil, err
	}
	r := reader{b: body}
	cke := &clientKeyExchange{identity: r.vec16()}
	if k == kxECDHEPSK {
		cke.point = r.vec8()
		if len(cke.point) == 0 {
			r.bad = true
		}
	}
	if !r.done() {
		return nil, decodeErr("ClientKeyExchange")
	}
	return cke, nil
}

// handshakeMsg wraps body in a handshake header.
func handshakeMsg(typ uint8, body []byte) []byte {
	var b builder
	b.u8(typ)
	b.vec24(body)
	return b.bytes()
}

// extension appends one extension whose data fill writes.
func (b *builder) extension(typ uint16, fill func(*builder)) {
	b.u16(typ)
	at := b.open16()
	if fill != nil {
		fill(b)
	}
	b.patch16(at)
}
