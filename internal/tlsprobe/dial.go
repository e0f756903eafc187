package tlsprobe

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/mamori-mqtt/mamori/internal/packet"
)

// HandshakeError is a failed TLS connection made by Dial, together with
// what the handshake revealed before it failed. Explain uses it to tell
// "the server wants a client certificate" from "no common cipher", and to
// say that a port speaks plain MQTT.
type HandshakeError struct {
	Addr string // the address dialled
	Err  error  // the error from the dial or the handshake
	// CertRequested: the server sent a CertificateRequest.
	CertRequested bool
	// AcceptableCAs are the distinguished names of the CAs whose client
	// certificates the server accepts, as it listed them.
	AcceptableCAs []string
	// SentCert is the client certificate sent, if any.
	SentCert *x509.Certificate
	// ServerCerts is the chain the server presented, if it got that far.
	ServerCerts []*x509.Certificate
	// PlainMQTT: after the handshake failed, a plain MQTT CONNECT to the
	// same address was answered with CONNACK.
	PlainMQTT bool
}

// Error returns the underlying error's text.
func (e *HandshakeError) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error.
func (e *HandshakeError) Unwrap() error { return e.Err }

// Dial connects to addr ("host:port") and completes the TLS handshake with
// the configuration ClientConfig(o, addr, warn) builds. A failure is a
// *HandshakeError for Explain. The context bounds the dial and the
// handshake. In TLS 1.3 a server refuses a client certificate only after
// the client's handshake is complete: when it asked for one, Dial waits a
// moment for that refusal. A slower refusal makes the first read fail:
// pass that error to Explain too.
func Dial(ctx context.Context, addr string, o ClientOptions, warn io.Writer) (*tls.Conn, error) {
	cfg, _, info, err := buildConfig(o, addr, warn, false)
	if err != nil {
		return nil, err
	}
	conn, err := handshake(ctx, addr, cfg)
	if err == nil {
		// A TLS 1.3 server refuses a client certificate (or its absence)
		// after the client's handshake: wait for that here, so the caller
		// gets the refusal with what the handshake revealed rather than a
		// reset on its first write.
		if err = awaitRefusal(conn, info.snapshot().certRequested); err == nil {
			return conn, nil
		}
		conn.Close()
	}
	return nil, newHandshakeError(ctx, addr, err, info)
}

// handshake dials TCP and runs the TLS client handshake.
func handshake(ctx context.Context, addr string, cfg *tls.Config) (*tls.Conn, error) {
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	conn := tls.Client(raw, cfg)
	if err := conn.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, err
	}
	return conn, nil
}

// newHandshakeError wraps err with what info recorded and, when the server
// hung up on the ClientHello without a word, checks for a plain MQTT port.
func newHandshakeError(ctx context.Context, addr string, err error, info *handshakeInfo) *HandshakeError {
	s := info.snapshot()
	he := &HandshakeError{Addr: addr, Err: err, CertRequested: s.certRequested, AcceptableCAs: dnNames(s.acceptableCAs),
		SentCert: s.sentCert, ServerCerts: s.peerCerts}
	var oe *net.OpError
	dialFailed := errors.As(err, &oe) && oe.Op == "dial"
	if !dialFailed && len(s.peerCerts) == 0 && isClosed(err) {
		// The handshake may have failed on the context's own deadline (a
		// plain broker waiting for the rest of a "CONNECT"); the probe gets
		// its own few seconds.
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
		defer cancel()
		if ok, _ := ProbePlainMQTT(pctx, addr); ok {
			he.PlainMQTT = true
		}
	}
	return he
}

// dnNames decodes the DER distinguished names of a CertificateRequest into
// readable ones ("CN=CA1,O=Example").
func dnNames(ders [][]byte) []string {
	var out []string
	for _, der := range ders {
		var rdn pkix.RDNSequence
		if rest, err := asn1.Unmarshal(der, &rdn); err != nil || len(rest) != 0 {
			out = append(out, "(undecodable name "+hex.EncodeToString(der)+")")
			continue
		}
		var n pkix.Name
		n.FillFromRDNSequence(&rdn)
		out = append(out, n.String())
	}
	return out
}

// ProbePlainMQTT reports whether addr answers a plain MQTT 3.1.1 CONNECT
// with a CONNACK, i.e. speaks MQTT without TLS. The CONNECT carries no
// credentials.
func ProbePlainMQTT(ctx context.Context, addr string) (bool, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	ack, err := mqttConnect(ctx, conn, MQTTOptions{})
	return ack != nil, err
}

// SpeaksTLS reports whether addr answers a TLS ClientHello with TLS, for a
// plain MQTT client whose CONNECT went unanswered: then the advice is to
// add --cafile. Nothing is verified; no certificate is sent.
func SpeaksTLS(ctx context.Context, addr string) bool {
	host, _ := splitHost(addr)
	cfg := &tls.Config{InsecureSkipVerify: true, ServerName: host} // only asks whether TLS answers
	conn, err := handshake(ctx, addr, cfg)
	if err == nil {
		conn.Close()
		return true
	}
	_, alert := RemoteAlert(err)
	return alert
}

// MQTTOptions are the CONNECT fields of the MQTT step of a probe.
type MQTTOptions struct {
	ClientID string // empty: "mamori-tlscheck-" and random hex
	Username string
	Password string
	// Timeout bounds the wait for CONNACK when ctx has no deadline; 0 is 10s.
	Timeout time.Duration
}

// mqttConnect sends an MQTT 3.1.1 CONNECT (clean session) and reads the
// CONNACK. ack is nil when none came; err then says what came instead.
func mqttConnect(ctx context.Context, conn net.Conn, o MQTTOptions) (*packet.Connack, error) {
	id := o.ClientID
	if id == "" {
		var b [4]byte
		rand.Read(b[:])
		id = "mamori-tlscheck-" + hex.EncodeToString(b[:])
	}
	c := &packet.Connect{ProtocolName: []byte("MQTT"), Version: packet.V311, CleanStart: true, KeepAlive: 30, ClientID: []byte(id)}
	if o.Username != "" {
		c.UsernameFlag, c.Username = true, []byte(o.Username)
		if o.Password != "" {
			c.PasswordFlag, c.Password = true, []byte(o.Password)
		}
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		t := o.Timeout
		if t == 0 {
			t = 10 * time.Second
		}
		deadline = time.Now().Add(t)
	}
	conn.SetDeadline(deadline)
	defer conn.SetDeadline(time.Time{})
	if _, err := conn.Write(c.Append(nil, packet.V311)); err != nil {
		return nil, err
	}
	r := packet.NewReader(conn, 1024)
	for {
		h, body, ok, err := r.Next()
		if err != nil {
			return nil, fmt.Errorf("the answer to CONNECT is not MQTT: %w", err)
		}
		if ok {
			if h.Type != packet.CONNACK {
				return nil, fmt.Errorf("the server answered CONNECT with %s, not CONNACK", h.Type)
			}
			ack := new(packet.Connack)
			if err := ack.Decode(body, packet.V311); err != nil {
				return nil, fmt.Errorf("malformed CONNACK: %w", err)
			}
			return ack, nil
		}
		if err := r.Fill(); err != nil {
			return nil, err
		}
	}
}

// connackText is mosquitto's wording of the MQTT 3.1.1 CONNACK return codes.
func connackText(code byte) string {
	switch code {
	case 0:
		return "Connection Accepted"
	case 1:
		return "Connection Refused: unacceptable protocol version"
	case 2:
		return "Connection Refused: identifier rejected"
	case 3:
		return "Connection Refused: broker unavailable"
	case 4:
		return "Connection Refused: bad user name or password"
	case 5:
		return "Connection Refused: not authorised"
	}
	return fmt.Sprintf("Connection Refused: unknown reason %d", code)
}
