package tlspsk

import (
	"bytes"
	"crypto/ecdh"
	"crypto/hmac"
	"io"
	"slices"
)

// clientState is what the client keeps between its two hellos.
type clientState struct {
	random    []byte
	sessionID []byte
	keys      map[CurveID]*ecdh.PrivateKey
	share     CurveID
	offered13 bool
	offered12 bool
	su13      *suite // the SHA-256 suite the binder is computed for
	key       []byte
	retried   bool // after a HelloRetryRequest
}

// clientHandshake sends a ClientHello offering TLS 1.3 (external PSK,
// psk_dhe_ke) and/or TLS 1.2 PSK suites, and completes the version the
// server picks.
func (c *Conn) clientHandshake() error {
	if err := c.cfg.Check(false); err != nil {
		return &Error{Alert: AlertInternalError, Reason: err.Error()}
	}
	st := &clientState{keys: map[CurveID]*ecdh.PrivateKey{}, key: slices.Clone(c.cfg.Key)}
	defer clear(st.key)
	c.identity = c.cfg.Identity
	c.serverName = c.cfg.ServerName
	st.random = make([]byte, 32)
	st.sessionID = make([]byte, 32)
	if _, err := io.ReadFull(c.cfg.rand(), st.random); err != nil {
		return errorf(AlertInternalError, "random: %v", err)
	}
	if _, err := io.ReadFull(c.cfg.rand(), st.sessionID); err != nil {
		return errorf(AlertInternalError, "random: %v", err)
	}
	c.clientRandom = st.random
	st.offered13 = c.cfg.maxVersion() >= VersionTLS13 && len(c.cfg.suitesFor(true)) > 0
	st.offered12 = c.cfg.minVersion() <= VersionTLS12 && len(c.cfg.suitesFor(false)) > 0
	if !st.offered13 {
		st.sessionID = nil
	}
	if st.offered13 {
		st.su13 = c.cfg.suitesFor(true)[0]
		st.share = c.cfg.curves()[0]
	}
	ch, err := c.clientHello(st, nil)
	if err != nil {
		return err
	}
	if err := c.writeHandshake(ch); err != nil {
		return err
	}
	if c.cfg.earlyData != nil && st.offered13 {
		if err := c.sendEarlyData(st); err != nil {
			return err
		}
	}
	if err := c.flush(); err != nil {
		return err
	}
	msg, err := c.readHandshake()
	if err != nil {
		return err
	}
	if msg[0] != typeServerHello {
		return errorf(AlertUnexpectedMessage, "expected ServerHello, got handshake message %d", msg[0])
	}
	sh, perr := parseServerHello(msg)
	if perr != nil {
		return perr
	}
	if sh.isHRR() {
		if !st.offered13 || sh.supportedVersion != VersionTLS13 {
			return errorf(AlertIllegalParameter, "HelloRetryRequest without TLS 1.3")
		}
		if sh, err = c.clientRetry(st, sh, ch); err != nil {
			return err
		}
	} else {
		c.tr = append(c.tr, msg...)
	}
	if sh.supportedVersion == VersionTLS13 {
		if !st.offered13 {
			return errorf(AlertIllegalParameter, "the server chose TLS 1.3, which was not offered")
		}
		return c.clientTLS13(st, sh)
	}
	if sh.supportedVersion != 0 || sh.version != VersionTLS12 {
		return errorf(AlertProtocolVersion, "the server chose %s; this client speaks TLS-PSK over %s", versionName(max(sh.version, sh.supportedVersion)),
			versionRange(c.cfg.minVersion(), c.cfg.maxVersion()))
	}
	if !st.offered12 {
		return errorf(AlertProtocolVersion, "the server offers only TLS 1.2, and --tls-version asks for TLS 1.3")
	}
	if st.offered13 && bytes.Equal(sh.random[24:], downgradeTLS12) {
		return errorf(AlertIllegalParameter, "the server signals a downgrade from TLS 1.3 to TLS 1.2 (RFC 8446 §4.1.3): a middlebox may be interfering")
	}
	return c.clientTLS12(st, sh)
}

// clientHello builds a ClientHello; the binder (if TLS 1.3 is offered) is
// computed over the transcript so far plus the truncated hello.
func (c *Conn) clientHello(st *clientState, cookie []byte) ([]byte, error) {
	var b builder
	b.u8(typeClientHello)
	hdr := b.open24()
	b.u16(VersionTLS12)
	b.raw(st.random)
	b.vec8(st.sessionID)
	at := b.open16()
	if st.offered13 {
		for _, s := range c.cfg.suitesFor(true) {
			b.u16(s.id)
		}
	}
	if st.offered12 {
		for _, s := range c.cfg.suitesFor(false) {
			b.u16(s.id)
		}
		b.u16(scsvRenegotiation)
	}
	b.patch16(at)
	b.vec8([]byte{0})
	exts := b.open16()
	if c.cfg.ServerName != "" {
		b.extension(extServerName, func(b *builder) {
			at := b.open16()
			b.u8(0)
			b.vec16([]byte(c.cfg.ServerName))
			b.patch16(at)
		})
	}
	b.extension(extSupportedGroups, func(b *builder) {
		at := b.open16()
		for _, g := range c.cfg.curves() {
			b.u16(uint16(g))
		}
		b.patch16(at)
	})
	if st.offered12 {
		b.extension(extPointFormats, func(b *builder) { b.vec8([]byte{0}) })
		b.extension(extExtendedMasterSec, nil)
	}
	if len(c.cfg.NextProtos) > 0 {
		b.extension(extALPN, func(b *builder) {
			at := b.open16()
			for _, p := range c.cfg.NextProtos {
				b.vec8([]byte(p))
			}
			b.patch16(at)
		})
	}
	if !st.offered13 {
		b.patch16(exts)
		b.patch24(hdr)
		return b.bytes(), nil
	}
	// TLS 1.3 extensions; pre_shared_key last (RFC 8446 §4.2.11).
	b.extension(extSupportedVersions, func(b *builder) {
		at := b.open8()
		b.u16(VersionTLS13)
		if st.offered12 {
			b.u16(VersionTLS12)
		}
		b.patch8(at)
	})
	b.extension(extSignatureAlgorithms, func(b *builder) {
		// Not used with a PSK, but some servers insist on it being present.
		at := b.open16()
		for _, s := range []uint16{0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0807} {
			b.u16(s)
		}
		b.patch16(at)
	})
	priv := st.keys[st.share]
	if priv == nil {
		var err error
		if priv, err = st.share.curve().GenerateKey(c.cfg.rand()); err != nil {
			return nil, errorf(AlertInternalError, "key generation: %v", err)
		}
		st.keys[st.share] = priv
	}
	b.extension(extKeyShare, func(b *builder) {
		at := b.open16()
		b.u16(uint16(st.share))
		b.vec16(priv.PublicKey().Bytes())
		b.patch16(at)
	})
	if cookie != nil {
		b.extension(extCookie, func(b *builder) { b.vec16(cookie) })
	}
	if c.cfg.earlyData != nil && !st.retried {
		b.extension(extEarlyData, nil)
	}
	b.extension(extPSKModes, func(b *builder) { b.vec8([]byte{pskDHEKE}) })
	hashLen := st.su13.hashLen
	b.extension(extPreSharedKey, func(b *builder) {
		at := b.open16()
		b.vec16([]byte(c.cfg.Identity))
		b.u32(0) // obfuscated_ticket_age: 0 for external PSKs
		b.patch16(at)
		at = b.open16()
		b.vec8(make([]byte, hashLen))
		b.patch16(at)
	})
	b.patch16(exts)
	b.patch24(hdr)
	msg := b.bytes()
	truncated := msg[:len(msg)-2-1-hashLen]
	sched := newSchedule(st.su13.hash, st.key)
	binder := sched.binder(true, c.transcriptHash(st.su13.hash, truncated))
	sched.zero()
	copy(msg[len(msg)-hashLen:], binder)
	return msg, nil
}

// clientRetry answers a HelloRetryRequest and reads the real ServerHello.
func (c *Conn) clientRetry(st *clientState, hrr *serverHello, ch1 []byte) (*serverHello, error) {
	su := suiteByID(hrr.suite)
	switch {
	case su == nil || su.kx != kxTLS13 || !slices.Contains(c.cfg.suitesFor(true), su):
		return nil, errorf(AlertIllegalParameter, "the HelloRetryRequest picks a cipher suite that was not offered")
	case !bytes.Equal(hrr.sessionID, st.sessionID):
		return nil, errorf(AlertIllegalParameter, "the HelloRetryRequest does not echo the session id")
	case hrr.selectedGroup == 0 && hrr.cookie == nil:
		return nil, errorf(AlertIllegalParameter, "the HelloRetryRequest would not change the ClientHello")
	}
	if hrr.selectedGroup != 0 {
		g := CurveID(hrr.selectedGroup)
		if !slices.Contains(c.cfg.curves(), g) || g == st.share {
			return nil, errorf(AlertIllegalParameter, "the HelloRetryRequest asks for group %v, which was not offered or was already sent", g)
		}
		st.share = g
	}
	st.su13 = su
	st.retried = true
	h := su.hash()
	h.Write(ch1)
	c.tr = append(c.tr[:0], typeMessageHash, 0, 0, byte(su.hashLen))
	c.tr = h.Sum(c.tr)
	c.tr = append(c.tr, hrr.raw...)
	ch2, err := c.clientHello(st, hrr.cookie)
	if err != nil {
		return nil, err
	}
	if err := c.queue(recordChangeCipherSpec, []byte{1}); err != nil {
		return nil, err
	}
	c.sentCCS = true
	if err := c.writeHandshake(ch2); err != nil {
		return nil, err
	}
	if err := c.flush(); err != nil {
		return nil, err
	}
	c.allowCCS = true
	msg, err := c.readHandshake()
	if err != nil {
		return nil, err
	}
	sh, perr := parseServerHello(msg)
	if perr != nil {
		return nil, perr
	}
	if sh.isHRR() {
		return nil, errorf(AlertUnexpectedMessage, "a second HelloRetryRequest")
	}
	if sh.supportedVersion != VersionTLS13 || sh.suite != su.id {
		return nil, errorf(AlertIllegalParameter, "the ServerHello after a HelloRetryRequest changed version or suite")
	}
	c.tr = append(c.tr, msg...)
	return sh, nil
}

// clientTLS13 completes a TLS 1.3 handshake after the ServerHello.
func (c *Conn) clientTLS13(st *clientState, sh *serverHello) error {
	c.version = VersionTLS13
	c.allowCCS = true
	su := suiteByID(sh.suite)
	switch {
	case su == nil || su.kx != kxTLS13 || !slices.Contains(c.cfg.suitesFor(true), su):
		return errorf(AlertIllegalParameter, "the server picked cipher suite %s, which was not offered", CipherSuiteName(sh.suite))
	case su.hash().Size() != st.su13.hashLen:
		return errorf(AlertIllegalParameter, "the server picked a suite whose hash does not match the PSK's")
	case !bytes.Equal(sh.sessionID, st.sessionID):
		return errorf(AlertIllegalParameter, "the ServerHello does not echo the session id")
	case sh.compression != 0:
		return errorf(AlertIllegalParameter, "the ServerHello selects compression")
	case sh.pskSelected < 0:
		return errorf(AlertHandshakeFailure, "the server did not accept the pre-shared key and wants to authenticate with a certificate; is this a TLS-PSK listener?")
	case sh.pskSelected != 0:
		return errorf(AlertIllegalParameter, "the server selected PSK identity %d; only one was offered", sh.pskSelected)
	case !sh.hasKeyShare || CurveID(sh.keyShare.group) != st.share:
		return errorf(AlertIllegalParameter, "the server's key share is missing or of another group than the client's")
	}
	c.suite = su
	peer, err := st.share.curve().NewPublicKey(sh.keyShare.data)
	if err != nil {
		return errorf(AlertIllegalParameter, "the server's %v key share is invalid", st.share)
	}
	shared, err := st.keys[st.share].ECDH(peer)
	if err != nil {
		return errorf(AlertIllegalParameter, "the server's %v key share is invalid", st.share)
	}
	defer clear(shared)
	sched := newSchedule(su.hash, st.key)
	defer sched.zero()
	sched.handshakeSecrets(shared, c.transcriptHash(su.hash))
	c.keyLog(keyLogClientHS, sched.cHS)
	c.keyLog(keyLogServerHS, sched.sHS)
	if err := c.expectKeyChange(); err != nil {
		return err
	}
	if err := c.in.set13(su, sched.sHS); err != nil {
		return err
	}
	sched.sHS = nil
	msg, err := c.readHandshake()
	if err != nil {
		if a, ok := AlertOf(err); ok && a == AlertBadRecordMAC {
			return errorf(AlertBadRecordMAC, "the server's handshake could not be decrypted: wrong pre-shared key for identity %q?", c.identity)
		}
		return err
	}
	if msg[0] != typeEncryptedExtensions {
		return errorf(AlertUnexpectedMessage, "expected EncryptedExtensions, got handshake message %d", msg[0])
	}
	ee, perr := parseEncryptedExtensions(msg)
	if perr != nil {
		return perr
	}
	if ee.earlyData {
		return errorf(AlertIllegalParameter, "the server accepted early data that was not sent")
	}
	if ee.alpn != "" && !slices.Contains(c.cfg.NextProtos, ee.alpn) {
		return errorf(AlertIllegalParameter, "the server selected ALPN protocol %q, which was not offered", ee.alpn)
	}
	c.alpn = ee.alpn
	c.tr = append(c.tr, msg...)
	msg, err = c.readHandshake()
	if err != nil {
		return err
	}
	if msg[0] != typeFinished {
		return errorf(AlertUnexpectedMessage, "expected the server's Finished, got handshake message %d (a certificate handshake?)", msg[0])
	}
	body, perr := parseBody(msg, typeFinished, "server Finished")
	if perr != nil {
		return perr
	}
	if !hmac.Equal(finishedMAC(su.hash, c.in.secret, c.transcriptHash(su.hash)), body) {
		return errorf(AlertDecryptError, "the server's Finished does not verify")
	}
	c.tr = append(c.tr, msg...)
	sched.appSecrets(c.transcriptHash(su.hash))
	c.keyLog(keyLogClientAP, sched.cAP)
	c.keyLog(keyLogServerAP, sched.sAP)
	if err := c.expectKeyChange(); err != nil {
		return err
	}
	if err := c.in.set13(su, sched.sAP); err != nil {
		return err
	}
	if len(st.sessionID) > 0 && !c.sentCCS {
		if err := c.queue(recordChangeCipherSpec, []byte{1}); err != nil {
			return err
		}
	}
	if err := c.out.set13(su, sched.cHS); err != nil {
		return err
	}
	sched.cHS = nil
	fin := finishedMAC(su.hash, c.out.secret, c.transcriptHash(su.hash))
	if err := c.writeHandshake(handshakeMsg(typeFinished, fin)); err != nil {
		return err
	}
	if err := c.out.set13(su, sched.cAP); err != nil {
		return err
	}
	c.allowCCS = false
	return c.flush()
}

// clientTLS12 completes a TLS 1.2 PSK handshake after the ServerHello.
func (c *Conn) clientTLS12(st *clientState, sh *serverHello) error {
	c.version = VersionTLS12
	su := suiteByID(sh.suite)
	switch {
	case su == nil || su.kx == kxTLS13 || !slices.Contains(c.cfg.suitesFor(false), su):
		return errorf(AlertIllegalParameter, "the server picked cipher suite %s, which was not offered", CipherSuiteName(sh.suite))
	case sh.compression != 0:
		return errorf(AlertIllegalParameter, "the ServerHello selects compression")
	case sh.hasReneg && len(sh.renegInfo) != 0:
		return errorf(AlertHandshakeFailure, "the ServerHello's renegotiation_info is not empty")
	case sh.alpn != "" && !slices.Contains(c.cfg.NextProtos, sh.alpn):
		return errorf(AlertIllegalParameter, "the server selected ALPN protocol %q, which was not offered", sh.alpn)
	}
	c.suite = su
	c.alpn = sh.alpn
	msg, err := c.readHandshake()
	if err != nil {
		return err
	}
	var ske *serverKeyExchange
	if msg[0] == typeServerKeyExchange {
		var perr *Error
		if ske, perr = parseServerKeyExchange(msg, su.kx); perr != nil {
			return perr
		}
		c.hint = string(ske.hint)
		c.tr = append(c.tr, msg...)
		if msg, err = c.readHandshake(); err != nil {
			return err
		}
	} else if su.kx == kxECDHEPSK {
		return errorf(AlertUnexpectedMessage, "expected ServerKeyExchange, got handshake message %d", msg[0])
	}
	if msg[0] != typeServerHelloDone {
		return errorf(AlertUnexpectedMessage, "expected ServerHelloDone, got handshake message %d (a certificate handshake?)", msg[0])
	}
	if _, perr := parseBody(msg, typeServerHelloDone, "ServerHelloDone"); perr != nil {
		return perr
	}
	c.tr = append(c.tr, msg...)

	var cke builder
	cke.vec16([]byte(c.cfg.Identity))
	var other []byte
	if su.kx == kxECDHEPSK {
		g := CurveID(ske.group)
		if !slices.Contains(c.cfg.curves(), g) {
			return errorf(AlertIllegalParameter, "the server chose group %v, which was not offered", g)
		}
		priv, err := g.curve().GenerateKey(c.cfg.rand())
		if err != nil {
			return errorf(AlertInternalError, "key generation: %v", err)
		}
		peer, err := g.curve().NewPublicKey(ske.point)
		if err != nil {
			return errorf(AlertIllegalParameter, "the server's %v public key is invalid", g)
		}
		if other, err = priv.ECDH(peer); err != nil {
			return errorf(AlertIllegalParameter, "the server's %v public key is invalid", g)
		}
		cke.vec8(priv.PublicKey().Bytes())
	} else {
		other = make([]byte, len(st.key))
	}
	if err := c.writeHandshake(handshakeMsg(typeClientKeyExchange, cke.bytes())); err != nil {
		return err
	}
	ms := masterSecret12(su, other, st.key, sh.ems, c.transcriptHash(su.hash), st.random, sh.random)
	clear(other)
	defer clear(ms)
	c.keyLog(keyLogTLS12, ms)
	if err := c.setKeys12(su, ms, st.random, sh.random); err != nil {
		return err
	}
	if err := c.queue(recordChangeCipherSpec, []byte{1}); err != nil {
		return err
	}
	c.out, c.pendingOut = c.pendingOut, halfConn{}
	fin := prf12(su.hash, ms, "client finished", c.transcriptHash(su.hash), 12)
	if err := c.writeHandshake(handshakeMsg(typeFinished, fin)); err != nil {
		return err
	}
	if err := c.flush(); err != nil {
		return err
	}
	if err := c.readCCS(); err != nil {
		if e, ok := err.(*Error); ok && e.Remote && (e.Alert == AlertBadRecordMAC || e.Alert == AlertDecryptError) {
			e.Reason = "the server could not decrypt this client's Finished: wrong pre-shared key for identity " + quote(c.identity)
		}
		return err
	}
	msg, err = c.readHandshake()
	if err != nil {
		return err
	}
	body, perr := parseBody(msg, typeFinished, "server Finished")
	if perr != nil {
		return perr
	}
	if !hmac.Equal(prf12(su.hash, ms, "server finished", c.transcriptHash(su.hash), 12), body) {
		return errorf(AlertDecryptError, "the server's Finished does not verify")
	}
	return nil
}

// sendEarlyData queues cfg.earlyData as 0-RTT records under the client
// early traffic secret (tests only: mamori never sends early data).
func (c *Conn) sendEarlyData(st *clientState) error {
	sched := newSchedule(st.su13.hash, st.key)
	secret := deriveSecret(st.su13.hash, sched.early, "c e traffic", c.transcriptHash(st.su13.hash))
	sched.zero()
	var early halfConn
	if err := early.set13(st.su13, secret); err != nil {
		return err
	}
	var err error
	c.wbuf, err = early.seal(c.wbuf, recordApplicationData, c.cfg.earlyData)
	return err
}
