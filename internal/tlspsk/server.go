package tlspsk

import (
	"crypto/hmac"
	"fmt"
	"hash"
	"io"
	"slices"
	"strings"
)

// earlyDataBudget is how much rejected 0-RTT data a server skips before
// it gives up (RFC 8446 §4.2.10 lets it abort past its limit). OpenSSL's
// default max_early_data is 16384.
const earlyDataBudget = 4 * maxCiphertext13

// serverHandshake reads the ClientHello and runs the TLS 1.3 or TLS 1.2
// handshake it asks for.
func (c *Conn) serverHandshake() error {
	if err := c.cfg.Check(true); err != nil {
		return &Error{Alert: AlertInternalError, Reason: err.Error()}
	}
	msg, err := c.readHandshake()
	if err != nil {
		return firstReadError(err)
	}
	if msg[0] != typeClientHello {
		return errorf(AlertUnexpectedMessage, "the client's first message is not a ClientHello")
	}
	ch, perr := parseClientHello(msg)
	if perr != nil {
		return perr
	}
	c.serverName = ch.serverName
	c.clientRandom = ch.random
	if c.cfg.maxVersion() >= VersionTLS13 && len(c.cfg.suitesFor(true)) > 0 && ch.offersVersion(VersionTLS13) {
		return c.serverTLS13(ch)
	}
	if c.cfg.minVersion() <= VersionTLS12 && ch.offersVersion(VersionTLS12) {
		return c.serverTLS12(ch)
	}
	return errorf(AlertProtocolVersion, "no TLS version in common: the client offers %s, this listener accepts %s",
		clientVersions(ch), versionRange(c.cfg.minVersion(), c.cfg.maxVersion()))
}

// firstReadError explains a failure to read the ClientHello.
func firstReadError(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return fmt.Errorf("tls-psk: the client closed the connection before its ClientHello: %w", err)
	}
	return err
}

func versionName(v uint16) string {
	switch v {
	case VersionTLS12:
		return "TLS 1.2"
	case VersionTLS13:
		return "TLS 1.3"
	case 0x0302:
		return "TLS 1.1"
	case 0x0301:
		return "TLS 1.0"
	case 0x0300:
		return "SSL 3.0"
	}
	return fmt.Sprintf("0x%04x", v)
}

func versionRange(lo, hi uint16) string {
	if lo == hi {
		return versionName(lo)
	}
	return versionName(lo) + " to " + versionName(hi)
}

func clientVersions(ch *clientHello) string {
	if ch.supportedVersions == nil {
		return versionName(ch.version) + " at most"
	}
	var n []string
	for _, v := range ch.supportedVersions {
		if v&0x0f0f == 0x0a0a {
			continue // GREASE
		}
		n = append(n, versionName(v))
	}
	return strings.Join(n, ", ")
}

func suiteNames(ids []uint16) string {
	var n []string
	for _, id := range ids {
		if id&0x0f0f == 0x0a0a || id == scsvRenegotiation || id == 0x5600 {
			continue
		}
		n = append(n, CipherSuiteName(id))
	}
	if len(n) > 12 {
		n = append(n[:12], fmt.Sprintf("and %d more", len(n)-12))
	}
	return strings.Join(n, ", ")
}

func configSuiteNames(ss []*suite) string {
	var n []string
	for _, s := range ss {
		n = append(n, s.name)
	}
	return strings.Join(n, ", ")
}

// transcriptHash hashes the transcript so far followed by more.
func (c *Conn) transcriptHash(h func() hash.Hash, more ...[]byte) []byte {
	d := h()
	d.Write(c.tr)
	for _, m := range more {
		d.Write(m)
	}
	return d.Sum(nil)
}

// lookupKey finds the first identity the server knows; the key is a copy
// the caller zeroes.
func (c *Conn) lookupKey(ids [][]byte) (int, []byte) {
	for i, id := range ids {
		if k, ok := c.cfg.GetKey(string(id)); ok && len(k) > 0 {
			return i, slices.Clone(k)
		}
	}
	return -1, nil
}

func printableIdentities(ids [][]byte) string {
	var n []string
	for i, id := range ids {
		if i == 3 {
			n = append(n, fmt.Sprintf("and %d more", len(ids)-3))
			break
		}
		if len(id) > 64 {
			id = id[:64]
		}
		n = append(n, fmt.Sprintf("%q", id))
	}
	return strings.Join(n, ", ")
}

// serverTLS13 is the server's TLS 1.3 handshake with an external PSK in
// psk_dhe_ke mode (RFC 8446 §2.2, §4).
func (c *Conn) serverTLS13(ch *clientHello) error {
	c.version = VersionTLS13
	c.allowCCS = true
	var su *suite
	for _, s := range c.cfg.suitesFor(true) {
		if ch.offersSuite(s.id) {
			su = s
			break
		}
	}
	if su == nil {
		return errorf(AlertHandshakeFailure, "no TLS 1.3 cipher suite in common: the client offers %s, this listener accepts %s",
			suiteNames(ch.suites), configSuiteNames(c.cfg.suitesFor(true)))
	}
	c.suite = su
	if len(ch.compression) != 1 || ch.compression[0] != 0 {
		return errorf(AlertIllegalParameter, "TLS 1.3 ClientHello offers compression")
	}
	if len(ch.identities) == 0 {
		return errorf(AlertHandshakeFailure, "the client offered no pre-shared key: this listener accepts only TLS-PSK clients (configured with --psk and --psk-identity)")
	}
	if ch.pskModes == nil {
		return errorf(AlertMissingExtension, "the ClientHello has pre_shared_key without psk_key_exchange_modes")
	}
	if !slices.Contains(ch.pskModes, pskDHEKE) {
		return errorf(AlertHandshakeFailure, "the client allows only psk_ke (a PSK without ephemeral key exchange), which gives no forward secrecy; this listener requires psk_dhe_ke")
	}
	if !ch.hasGroups || !ch.hasKeyShare {
		return errorf(AlertMissingExtension, "the ClientHello has no supported_groups or key_share extension")
	}
	group, share := c.selectShare(ch)
	hrr := false
	if share == nil {
		// The client supports a group of ours but sent no share for it:
		// ask again (HelloRetryRequest, RFC 8446 §4.1.4).
		for _, g := range c.cfg.curves() {
			if slices.Contains(ch.groups, uint16(g)) {
				group = g
				break
			}
		}
		if group == 0 {
			return errorf(AlertHandshakeFailure, "no key exchange group in common: the client offers %s, this listener accepts X25519 and P-256",
				groupNames(ch.groups))
		}
		var err error
		if ch, err = c.helloRetry(ch, su, group); err != nil {
			return err
		}
		hrr = true
		for _, ks := range ch.keyShares {
			if ks.group == uint16(group) {
				share = ks.data
			}
		}
	}

	ids := make([][]byte, len(ch.identities))
	for i, id := range ch.identities {
		ids[i] = id.identity
	}
	idx, key := c.lookupKey(ids)
	if idx < 0 {
		return errorf(AlertUnknownPSKIdentity, "unknown PSK identity %s (not in psk_file)", printableIdentities(ids))
	}
	defer clear(key)
	c.identity = string(ids[idx])
	sched := newSchedule(su.hash, key)
	defer sched.zero()
	binder := sched.binder(true, c.transcriptHash(su.hash, ch.raw[:ch.bindersAt]))
	if !hmac.Equal(binder, ch.binders[idx]) {
		return errorf(AlertDecryptError, "wrong key for PSK identity %q: the client's key differs from the one in psk_file (binder check failed)", c.identity)
	}

	priv, err := group.curve().GenerateKey(c.cfg.rand())
	if err != nil {
		return errorf(AlertInternalError, "key generation: %v", err)
	}
	peer, err := group.curve().NewPublicKey(share)
	if err != nil {
		return errorf(AlertIllegalParameter, "the client's %v key share is invalid", group)
	}
	shared, err := priv.ECDH(peer)
	if err != nil {
		return errorf(AlertIllegalParameter, "the client's %v key share is invalid", group)
	}
	defer clear(shared)

	var b builder
	b.u16(VersionTLS12)
	random := make([]byte, 32)
	if _, err := io.ReadFull(c.cfg.rand(), random); err != nil {
		return errorf(AlertInternalError, "random: %v", err)
	}
	b.raw(random)
	b.vec8(ch.sessionID)
	b.u16(su.id)
	b.u8(0)
	at := b.open16()
	b.extension(extSupportedVersions, func(b *builder) { b.u16(VersionTLS13) })
	b.extension(extKeyShare, func(b *builder) {
		b.u16(uint16(group))
		b.vec16(priv.PublicKey().Bytes())
	})
	b.extension(extPreSharedKey, func(b *builder) { b.u16(uint16(idx)) })
	b.patch16(at)
	c.tr = append(c.tr, ch.raw...)
	if err := c.writeHandshake(handshakeMsg(typeServerHello, b.bytes())); err != nil {
		return err
	}
	if len(ch.sessionID) > 0 && !hrr {
		// Middlebox compatibility mode (RFC 8446 §D.4).
		if err := c.queue(recordChangeCipherSpec, []byte{1}); err != nil {
			return err
		}
	}
	sched.handshakeSecrets(shared, c.transcriptHash(su.hash))
	c.keyLog(keyLogClientHS, sched.cHS)
	c.keyLog(keyLogServerHS, sched.sHS)
	if err := c.out.set13(su, sched.sHS); err != nil {
		return err
	}
	sched.sHS = nil // owned by c.out now

	var ee builder
	at = ee.open16()
	if p := c.selectALPN(ch.alpn); p != "" {
		c.alpn = p
		ee.extension(extALPN, func(b *builder) {
			at := b.open16()
			b.vec8([]byte(p))
			b.patch16(at)
		})
	}
	ee.patch16(at)
	if err := c.writeHandshake(handshakeMsg(typeEncryptedExtensions, ee.bytes())); err != nil {
		return err
	}
	fin := finishedMAC(su.hash, c.out.secret, c.transcriptHash(su.hash))
	if err := c.writeHandshake(handshakeMsg(typeFinished, fin)); err != nil {
		return err
	}
	sched.appSecrets(c.transcriptHash(su.hash))
	c.keyLog(keyLogClientAP, sched.cAP)
	c.keyLog(keyLogServerAP, sched.sAP)
	if err := c.out.set13(su, sched.sAP); err != nil {
		return err
	}
	if err := c.flush(); err != nil {
		return err
	}

	if err := c.expectKeyChange(); err != nil {
		return err
	}
	if err := c.in.set13(su, sched.cHS); err != nil {
		return err
	}
	sched.cHS = nil
	if ch.earlyData && !hrr {
		c.skipFailures = earlyDataBudget
	}
	msg, err := c.readHandshake()
	if err != nil {
		return explainFinishedError(err, c.identity)
	}
	if msg[0] == typeEndOfEarlyData {
		return errorf(AlertUnexpectedMessage, "EndOfEarlyData although early data was not accepted")
	}
	body, perr := parseBody(msg, typeFinished, "client Finished")
	if perr != nil {
		return perr
	}
	want := finishedMAC(su.hash, c.in.secret, c.transcriptHash(su.hash))
	if !hmac.Equal(want, body) {
		return errorf(AlertDecryptError, "the client's Finished does not verify")
	}
	if err := c.expectKeyChange(); err != nil {
		return err
	}
	c.allowCCS = false
	c.skipFailures = 0
	return c.in.set13(su, sched.cAP)
}

// explainFinishedError gives the cause when the peer's Finished cannot be
// read: undecryptable means the keys differ.
func explainFinishedError(err error, identity string) error {
	if a, ok := AlertOf(err); ok && a == AlertBadRecordMAC {
		if e, _ := err.(*Error); e != nil && !e.Remote {
			return errorf(AlertBadRecordMAC, "wrong key for PSK identity %q: the client's handshake could not be decrypted with the key in psk_file", identity)
		}
	}
	return err
}

func groupNames(gs []uint16) string {
	var n []string
	for _, g := range gs {
		if g&0x0f0f == 0x0a0a {
			continue
		}
		switch g {
		case 24:
			n = append(n, "P-384")
		case 25:
			n = append(n, "P-521")
		case 30:
			n = append(n, "X448")
		case 256, 257, 258, 259, 260:
			n = append(n, fmt.Sprintf("ffdhe%d", []int{2048, 3072, 4096, 6144, 8192}[g-256]))
		default:
			n = append(n, CurveID(g).String())
		}
	}
	if len(n) == 0 {
		return "none"
	}
	return strings.Join(n, ", ")
}

// selectShare picks the client's key share of the server's most preferred
// group among the shares sent.
func (c *Conn) selectShare(ch *clientHello) (CurveID, []byte) {
	for _, g := range c.cfg.curves() {
		if !slices.Contains(ch.groups, uint16(g)) {
			continue
		}
		for _, ks := range ch.keyShares {
			if ks.group == uint16(g) {
				return g, ks.data
			}
		}
	}
	return 0, nil
}

// selectALPN picks the first of the server's protocols the client offers;
// none when the client offers none of them (clients without ALPN, or with
// another protocol, still connect, as with the broker's certificate TLS).
func (c *Conn) selectALPN(offered []string) string {
	for _, p := range c.cfg.NextProtos {
		if slices.Contains(offered, p) {
			return p
		}
	}
	return ""
}

// helloRetry sends a HelloRetryRequest for group and reads the second
// ClientHello.
func (c *Conn) helloRetry(ch *clientHello, su *suite, group CurveID) (*clientHello, error) {
	// The transcript restarts with the hash of the first ClientHello
	// (RFC 8446 §4.4.1).
	h := su.hash()
	h.Write(ch.raw)
	c.tr = append(c.tr[:0], typeMessageHash, 0, 0, byte(su.hashLen))
	c.tr = h.Sum(c.tr)
	var b builder
	b.u16(VersionTLS12)
	b.raw(helloRetryRandom)
	b.vec8(ch.sessionID)
	b.u16(su.id)
	b.u8(0)
	at := b.open16()
	b.extension(extSupportedVersions, func(b *builder) { b.u16(VersionTLS13) })
	b.extension(extKeyShare, func(b *builder) { b.u16(uint16(group)) })
	b.patch16(at)
	if err := c.writeHandshake(handshakeMsg(typeServerHello, b.bytes())); err != nil {
		return nil, err
	}
	if len(ch.sessionID) > 0 {
		if err := c.queue(recordChangeCipherSpec, []byte{1}); err != nil {
			return nil, err
		}
	}
	if err := c.flush(); err != nil {
		return nil, err
	}
	if ch.earlyData {
		c.skipAppData = earlyDataBudget
	}
	msg, err := c.readHandshake()
	c.skipAppData = 0
	if err != nil {
		return nil, err
	}
	ch2, perr := parseClientHello(msg)
	if perr != nil {
		return nil, perr
	}
	switch {
	case len(ch2.keyShares) != 1 || ch2.keyShares[0].group != uint16(group):
		return nil, errorf(AlertIllegalParameter, "the second ClientHello does not carry the one %v key share asked for", group)
	case !ch2.offersSuite(su.id) || !ch2.offersVersion(VersionTLS13):
		return nil, errorf(AlertIllegalParameter, "the second ClientHello changed its cipher suites or versions")
	case ch2.earlyData:
		return nil, errorf(AlertIllegalParameter, "the second ClientHello offers early data")
	case string(ch2.sessionID) != string(ch.sessionID):
		return nil, errorf(AlertIllegalParameter, "the second ClientHello changed its session id")
	case len(ch2.identities) == 0 || ch2.pskModes == nil:
		return nil, errorf(AlertIllegalParameter, "the second ClientHello dropped its pre-shared key")
	}
	return ch2, nil
}

func quote(s string) string { return fmt.Sprintf("%q", s) }
