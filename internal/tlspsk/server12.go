package tlspsk

import (
	"crypto/ecdh"
	"crypto/hmac"
	"io"
	"slices"
)

// serverTLS12 is the server's TLS 1.2 PSK handshake (RFC 4279, RFC 5489,
// RFC 5487, RFC 7905, RFC 7627).
func (c *Conn) serverTLS12(ch *clientHello) error {
	c.version = VersionTLS12
	// Whether this server would have spoken TLS 1.3: its version range
	// and its suites (ciphers_tls1.3 may leave none).
	can13 := c.cfg.maxVersion() >= VersionTLS13 && len(c.cfg.suitesFor(true)) > 0
	if ch.offersSuite(0x5600) && can13 {
		// TLS_FALLBACK_SCSV (RFC 7507): the client retried with a lower
		// version than it supports, which an attacker may have forced.
		return errorf(AlertInappropriateFallback, "the client fell back to TLS 1.2 although this listener accepts TLS 1.3")
	}
	if !slices.Contains(ch.compression, 0) {
		return errorf(AlertIllegalParameter, "the client offers only compression methods")
	}
	group := CurveID(0)
	for _, g := range c.cfg.curves() {
		if !ch.hasGroups || slices.Contains(ch.groups, uint16(g)) {
			group = g
			break
		}
	}
	ecOK := group != 0 && (!ch.hasPointFormats || slices.Contains(ch.pointFormats, 0))
	var su *suite
	for _, s := range c.cfg.suitesFor(false) {
		if ch.offersSuite(s.id) && (s.kx != kxECDHEPSK || ecOK) {
			su = s
			break
		}
	}
	if su == nil {
		return errorf(AlertHandshakeFailure, "no TLS 1.2 cipher suite in common: the client offers %s, this listener accepts %s",
			suiteNames(ch.suites), configSuiteNames(c.cfg.suitesFor(false)))
	}
	c.suite = su
	if ch.hasReneg && len(ch.renegInfo) != 0 {
		return errorf(AlertHandshakeFailure, "the ClientHello's renegotiation_info is not empty")
	}
	secureReneg := ch.hasReneg || ch.offersSuite(scsvRenegotiation)

	random := make([]byte, 32)
	if _, err := io.ReadFull(c.cfg.rand(), random); err != nil {
		return errorf(AlertInternalError, "random: %v", err)
	}
	if can13 {
		copy(random[24:], downgradeTLS12) // RFC 8446 §4.1.3
	}
	var b builder
	b.u16(VersionTLS12)
	b.raw(random)
	b.vec8(nil) // no session id: no resumption
	b.u16(su.id)
	b.u8(0)
	at := b.open16()
	if secureReneg {
		b.extension(extRenegotiationInfo, func(b *builder) { b.u8(0) })
	}
	if ch.ems {
		b.extension(extExtendedMasterSec, nil)
	}
	if su.kx == kxECDHEPSK && ch.hasPointFormats {
		b.extension(extPointFormats, func(b *builder) { b.vec8([]byte{0}) })
	}
	if p := c.selectALPN(ch.alpn); p != "" {
		c.alpn = p
		b.extension(extALPN, func(b *builder) {
			at := b.open16()
			b.vec8([]byte(p))
			b.patch16(at)
		})
	}
	if b.len() == at+2 {
		b.b = b.b[:at] // no extensions at all
	} else {
		b.patch16(at)
	}
	c.tr = append(c.tr, ch.raw...)
	if err := c.writeHandshake(handshakeMsg(typeServerHello, b.bytes())); err != nil {
		return err
	}

	var priv *ecdh.PrivateKey
	if su.kx == kxECDHEPSK || c.cfg.Hint != "" {
		var ske builder
		ske.vec16([]byte(c.cfg.Hint))
		if su.kx == kxECDHEPSK {
			var err error
			if priv, err = group.curve().GenerateKey(c.cfg.rand()); err != nil {
				return errorf(AlertInternalError, "key generation: %v", err)
			}
			ske.u8(3) // named_curve
			ske.u16(uint16(group))
			ske.vec8(priv.PublicKey().Bytes())
		}
		if err := c.writeHandshake(handshakeMsg(typeServerKeyExchange, ske.bytes())); err != nil {
			return err
		}
	}
	if err := c.writeHandshake(handshakeMsg(typeServerHelloDone, nil)); err != nil {
		return err
	}
	if err := c.flush(); err != nil {
		return err
	}

	msg, err := c.readHandshake()
	if err != nil {
		return err
	}
	if msg[0] != typeClientKeyExchange {
		return errorf(AlertUnexpectedMessage, "expected ClientKeyExchange, got handshake message %d", msg[0])
	}
	cke, perr := parseClientKeyExchange(msg, su.kx)
	if perr != nil {
		return perr
	}
	idx, key := c.lookupKey([][]byte{cke.identity})
	if idx < 0 {
		return errorf(AlertUnknownPSKIdentity, "unknown PSK identity %s (not in psk_file)", printableIdentities([][]byte{cke.identity}))
	}
	defer clear(key)
	c.identity = string(cke.identity)
	var other []byte
	if su.kx == kxECDHEPSK {
		peer, err := group.curve().NewPublicKey(cke.point)
		if err != nil {
			return errorf(AlertIllegalParameter, "the client's %v public key is invalid", group)
		}
		if other, err = priv.ECDH(peer); err != nil {
			return errorf(AlertIllegalParameter, "the client's %v public key is invalid", group)
		}
	} else {
		other = make([]byte, len(key))
	}
	c.tr = append(c.tr, msg...)
	ms := masterSecret12(su, other, key, ch.ems, c.transcriptHash(su.hash), ch.random, random)
	defer clear(ms)
	c.keyLog(keyLogTLS12, ms)
	if err := c.setKeys12(su, ms, ch.random, random); err != nil {
		return err
	}

	if err := c.readCCS(); err != nil {
		return err
	}
	msg, err = c.readHandshake()
	if err != nil {
		return explainFinishedError(err, c.identity)
	}
	body, perr := parseBody(msg, typeFinished, "client Finished")
	if perr != nil {
		return perr
	}
	want := prf12(su.hash, ms, "client finished", c.transcriptHash(su.hash), 12)
	if !hmac.Equal(want, body) {
		return errorf(AlertDecryptError, "the client's Finished does not verify")
	}
	c.tr = append(c.tr, msg...)
	if err := c.queue(recordChangeCipherSpec, []byte{1}); err != nil {
		return err
	}
	c.out, c.pendingOut = c.pendingOut, halfConn{}
	fin := prf12(su.hash, ms, "server finished", c.transcriptHash(su.hash), 12)
	if err := c.writeHandshake(handshakeMsg(typeFinished, fin)); err != nil {
		return err
	}
	return c.flush()
}

// masterSecret12 computes the TLS 1.2 master secret from the PSK
// premaster secret (RFC 4279 §2, RFC 5489 §2), with the extended master
// secret when both sides agreed to it (RFC 7627 §4).
func masterSecret12(su *suite, other, psk []byte, ems bool, sessionHash, clientRandom, serverRandom []byte) []byte {
	var pms builder
	pms.vec16(other)
	pms.vec16(psk)
	defer clear(pms.b)
	if ems {
		return prf12(su.hash, pms.b, "extended master secret", sessionHash, 48)
	}
	return prf12(su.hash, pms.b, "master secret", append(slices.Clone(clientRandom), serverRandom...), 48)
}

// setKeys12 derives the key block (RFC 5246 §6.3) and installs the read
// key now and the write key in pendingOut, for after this side's
// ChangeCipherSpec.
func (c *Conn) setKeys12(su *suite, ms, clientRandom, serverRandom []byte) error {
	n := 2*su.keyLen + 2*su.ivLen
	kb := prf12(su.hash, ms, "key expansion", append(slices.Clone(serverRandom), clientRandom...), n)
	defer clear(kb)
	ck, sk := slices.Clone(kb[:su.keyLen]), slices.Clone(kb[su.keyLen:2*su.keyLen])
	civ, siv := slices.Clone(kb[2*su.keyLen:2*su.keyLen+su.ivLen]), slices.Clone(kb[2*su.keyLen+su.ivLen:])
	readKey, readIV, writeKey, writeIV := ck, civ, sk, siv
	if c.isClient {
		readKey, readIV, writeKey, writeIV = sk, siv, ck, civ
	}
	if err := c.pendingIn.setKeys(su, readKey, readIV, false, nil); err != nil {
		return err
	}
	return c.pendingOut.setKeys(su, writeKey, writeIV, false, nil)
}

// readCCS reads the peer's ChangeCipherSpec and switches to its keys.
func (c *Conn) readCCS() error {
	if err := c.expectKeyChange(); err != nil {
		return err
	}
	typ, data, err := c.readRecord()
	if err != nil {
		return err
	}
	switch {
	case typ == recordAlert:
		return c.alertError(data)
	case typ != recordChangeCipherSpec:
		return errorf(AlertUnexpectedMessage, "expected ChangeCipherSpec, got a record of type %d", typ)
	case len(data) != 1 || data[0] != 1:
		return errorf(AlertUnexpectedMessage, "malformed ChangeCipherSpec")
	}
	c.in, c.pendingIn = c.pendingIn, halfConn{}
	return nil
}
