package clientflags

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mamori-mqtt/mamori/internal/client"
	"github.com/mamori-mqtt/mamori/internal/packet"
	"github.com/mamori-mqtt/mamori/internal/tlsprobe"
	"github.com/mamori-mqtt/mamori/internal/tlspsk"
)

// Output serialises writes to stdout from the read goroutine (messages,
// debug lines) and the command's own goroutine.
type Output struct {
	mu sync.Mutex
	W  io.Writer
}

// Write writes p whole.
func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.W.Write(p)
}

// Session is a connected client with what the commands need around it.
type Session struct {
	Client  *client.Client
	Connack *packet.Connack
	Config  *Config
	Out     *Output
	Stderr  io.Writer
	id      string
	idMu    sync.Mutex
}

// ExitConnectionLost is mosquitto_pub's and mosquitto_sub's exit status
// when an established connection is lost (MOSQ_ERR_CONN_LOST).
const ExitConnectionLost = 7

// Lost closes the client after its connection ended with err, prints why
// in mosquitto's words and returns the exit status: the DISCONNECT reason
// code when the broker sent one, ExitConnectionLost otherwise.
func (s *Session) Lost(err error) int {
	s.Client.Close()
	var de *client.DisconnectError
	if errors.As(err, &de) {
		s.Config.Errf(s.Stderr, "Error: %s\n", ReasonString(de.Code))
		return int(de.Code)
	}
	s.Config.Errf(s.Stderr, "Error: The connection was lost.\n")
	return ExitConnectionLost
}

// Errf prints to stderr unless --quiet, as mosquitto's err_printf.
func (c *Config) Errf(stderr io.Writer, format string, args ...any) {
	if !c.Quiet {
		fmt.Fprintf(stderr, format, args...)
	}
}

// ReportArgError prints a Parse error as mosquitto does and returns the exit
// status (always 1, as mosquitto). usage prints the help text to stdout.
func ReportArgError(k Kind, err error, stdout, stderr io.Writer, usage func(io.Writer)) int {
	switch {
	case errors.Is(err, ErrHelp):
		usage(stdout)
	case errors.Is(err, ErrVersion):
		fmt.Fprintf(stdout, "%s (mamori) version 2.0 compatible.\n", k.Name())
	default:
		var ae *ArgError
		if errors.As(err, &ae) {
			io.WriteString(stderr, ae.Msg)
		} else {
			fmt.Fprintf(stderr, "Error: %v\n", err)
		}
		fmt.Fprintf(stderr, "\nUse '%s --help' to see usage.\n", k.Name())
	}
	return 1
}

// ClientID is the identifier to connect with: -i, -I plus the process id,
// or, when neither is given, empty (the broker assigns one) except for MQTT
// 3.1, which does not allow that, where libmosquitto makes one up.
func (c *Config) ClientID() string {
	switch {
	case c.IDPrefix != "":
		return c.IDPrefix + strconv.Itoa(os.Getpid())
	case c.ID != "":
		return c.ID
	case c.Version == packet.V31:
		const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
		b := make([]byte, 18)
		rand.Read(b)
		for i := range b {
			b[i] = chars[int(b[i])%len(chars)]
		}
		return "mosq-" + string(b)
	}
	return ""
}

// Connect dials and sends CONNECT as the flags say. On failure it prints
// mosquitto's message and returns the exit status; on success the status is
// 0. extra adjusts the options (message handler...) before dialling.
func (c *Config) Connect(ctx context.Context, stdout, stderr io.Writer, extra func(*client.Options)) (*Session, int) {
	out, ok := stdout.(*Output)
	if !ok {
		out = &Output{W: stdout}
	}
	s := &Session{Config: c, Out: out, Stderr: stderr, id: c.ClientID()}
	o := client.Options{
		Version:     c.Version,
		ClientID:    s.id,
		CleanStart:  c.CleanSession,
		KeepAlive:   time.Duration(c.KeepAlive) * time.Second,
		Username:    c.Username,
		MaxInflight: c.MaxInflight,
	}
	if c.Password != nil {
		if c.Username == nil && c.Version != packet.V5 {
			c.Errf(stderr, "Error: Problem setting username and/or password.\n")
			return nil, 1
		}
		o.Password = []byte(*c.Password)
	}
	if c.Version == packet.V5 {
		o.Props = c.ConnectProps
		if c.Kind == Sub && c.MsgCount > 0 && c.MsgCount < 20 && !o.Props.Present(packet.PropReceiveMaximum) {
			// Stop the broker sending more than -C messages before we leave.
			o.Props.Set(packet.PropReceiveMaximum)
			o.Props.ReceiveMaximum = uint16(c.MsgCount)
		}
	}
	if c.WillTopic != nil {
		w := &client.Will{Topic: *c.WillTopic, QoS: c.WillQoS, Retain: c.WillRetain, Props: c.WillProps}
		if c.WillPayload != nil {
			w.Payload = []byte(*c.WillPayload)
		}
		o.Will = w
	}
	var tlsCfg *tls.Config
	var pskCfg *tlspsk.Config
	var tlsOpts tlsprobe.ClientOptions
	if c.UsesTLS() {
		tlsOpts = c.TLS
		if tlsOpts.CAFile == "" && tlsOpts.CAPath == "" && tlsOpts.PSK == "" {
			// Port 8883 without a CA: trust the system's CAs, as mosquitto 2.
			tlsOpts.UseOSCerts = true
		}
		var err error
		if tlsOpts.PSK != "" {
			// TLS-PSK is made by package tlspsk, not crypto/tls.
			pskCfg, err = tlsprobe.PSKConfig(tlsOpts, c.Host)
		} else {
			tlsCfg, err = tlsprobe.ClientConfig(tlsOpts, c.Host, stderr)
		}
		if err != nil {
			c.Errf(stderr, "Error: Problem setting TLS options: %v.\n", err)
			return nil, 1
		}
	}
	if c.Debug {
		o.OnPacket = s.debug
	}
	if extra != nil {
		extra(&o)
	}
	port := c.EffectivePort()
	addr := net.JoinHostPort(c.Host, strconv.Itoa(port))
	dialer, err := client.TCPDialer(c.BindAddress, c.NoDelay)
	if err != nil {
		c.Errf(stderr, "Error: %v\n", err)
		return nil, 1
	}
	if c.Proxy != nil {
		dialer = &client.SOCKS5{Proxy: net.JoinHostPort(c.Proxy.Host, strconv.Itoa(c.Proxy.Port)),
			Username: c.Proxy.Username, Password: c.Proxy.Password, Forward: dialer}
	}
	switch {
	case c.UnixSocket:
		o.Network, o.Address = "unix", c.Host
		o.TLSConfig, o.PSK = tlsCfg, pskCfg
	case c.WebSockets && pskCfg != nil:
		c.Errf(stderr, "Error: Problem setting TLS options: --psk cannot be used with WebSockets.\n")
		return nil, 1
	case c.WebSockets:
		scheme := "ws"
		if tlsCfg != nil {
			scheme = "wss"
		}
		url := scheme + "://" + addr + "/mqtt"
		o.Dial = func(ctx context.Context) (net.Conn, error) {
			return client.DialWebSocket(ctx, url, tlsCfg, dialer)
		}
	default:
		o.Dial = func(ctx context.Context) (net.Conn, error) { return dialer.DialContext(ctx, "tcp", addr) }
		o.TLSConfig, o.PSK = tlsCfg, pskCfg
	}
	cl, ack, err := client.Dial(ctx, o)
	if err != nil {
		return nil, s.connectError(err, tlsOpts)
	}
	s.Client, s.Connack = cl, ack
	return s, 0
}

// connectError prints why Dial failed, in mosquitto's words, and returns
// the exit status.
func (s *Session) connectError(err error, tlsOpts tlsprobe.ClientOptions) int {
	c := s.Config
	var ce *client.ConnackError
	var he *client.HandshakeError
	var dnsErr *net.DNSError
	var errno syscall.Errno
	switch {
	case errors.As(err, &ce):
		code := int(ce.Code)
		switch {
		case c.Kind == RR:
			if ce.Code == packet.ErrUnsupportedVersion {
				c.Errf(s.Stderr, "Connection error: %s. mosquitto_rr only supports connecting to an MQTT v5 broker\n", ReasonString(ce.Code))
			} else {
				c.Errf(s.Stderr, "Connection error: %s\n", ReasonString(ce.Code))
			}
		case c.Version == packet.V5:
			if ce.Code == packet.ErrUnsupportedVersion {
				c.Errf(s.Stderr, "Connection error: %s. Try connecting to an MQTT v5 broker, or use MQTT v3.x mode.\n", ReasonString(ce.Code))
			} else {
				c.Errf(s.Stderr, "Connection error: %s\n", ReasonString(ce.Code))
			}
		default:
			c.Errf(s.Stderr, "Connection error: %s\n", client.ConnackString(byte(ce.Code)))
		}
		if c.Kind == Pub {
			if c.Version == packet.V5 {
				c.Errf(s.Stderr, "Error: A network protocol error occurred when communicating with the broker.\n")
			} else {
				c.Errf(s.Stderr, "Error: The connection was refused.\n")
			}
		}
		return code
	case errors.As(err, &he):
		c.Errf(s.Stderr, "%s\n", tlsprobe.Explain(he.Err, tlsOpts, c.Host))
		c.Errf(s.Stderr, "Error: A TLS error occurred.\n")
		return exitTLS
	case errors.As(err, &dnsErr):
		c.Errf(s.Stderr, "Unable to connect (Lookup error.).\n")
		return 1
	case errors.As(err, &errno):
		c.Errf(s.Stderr, "Error: %s\n", capitalize(errno.Error()))
		return 1
	case errors.Is(err, context.DeadlineExceeded):
		c.Errf(s.Stderr, "Error: Connection timed out\n")
		return 1
	}
	c.Errf(s.Stderr, "Error: %v\n", err)
	return 1
}

// exitTLS is libmosquitto's MOSQ_ERR_TLS, the status mosquitto_pub and
// mosquitto_sub usually exit with when the handshake fails. (They exit 1
// instead when the failure is seen while connecting rather than in their
// network loop, which depends on timing; mamori always returns 8.)
const exitTLS = 8

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// LoadMessage reads the message of -f FILE or -s (whole stdin) into
// c.Message, printing mosquitto's errors; -n leaves it empty. It reports
// whether the command may go on.
func (c *Config) LoadMessage(stdin io.Reader, stderr io.Writer) bool {
	switch c.Mode {
	case ModeFile:
		b, err := os.ReadFile(c.File)
		if err != nil {
			c.Errf(stderr, "Error: Unable to open file \"%s\".\n", c.File)
			c.Errf(stderr, "Error loading input file \"%s\".\n", c.File)
			return false
		}
		c.Message = b
	case ModeStdinFile:
		b, err := io.ReadAll(stdin)
		if err != nil {
			c.Errf(stderr, "Error loading input from stdin.\n")
			return false
		}
		c.Message = b
	case ModeNull:
		c.Message = nil
	}
	return true
}

// ReasonString is libmosquitto's wording of an MQTT 5 reason code.
func ReasonString(r packet.ReasonCode) string {
	if s, ok := reasonStrings[r]; ok {
		return s
	}
	return "Unknown reason"
}

var reasonStrings = map[packet.ReasonCode]string{
	0x00: "Success", 0x01: "Granted QoS 1", 0x02: "Granted QoS 2", 0x04: "Disconnect with Will Message",
	0x10: "No matching subscribers", 0x11: "No subscription existed", 0x18: "Continue authentication",
	0x19: "Re-authenticate", 0x80: "Unspecified error", 0x81: "Malformed Packet", 0x82: "Protocol Error",
	0x83: "Implementation specific error", 0x84: "Unsupported Protocol Version", 0x85: "Client Identifier not valid",
	0x86: "Bad User Name or Password", 0x87: "Not authorized", 0x88: "Server unavailable", 0x89: "Server busy",
	0x8A: "Banned", 0x8B: "Server shutting down", 0x8C: "Bad authentication method", 0x8D: "Keep Alive timeout",
	0x8E: "Session taken over", 0x8F: "Topic Filter invalid", 0x90: "Topic Name invalid",
	0x91: "Packet Identifier in use", 0x92: "Packet Identifier not found", 0x93: "Receive Maximum exceeded",
	0x94: "Topic Alias invalid", 0x95: "Packet too large", 0x96: "Message rate too high", 0x97: "Quota exceeded",
	0x98: "Administrative action", 0x99: "Payload format invalid", 0x9A: "Retain not supported",
	0x9B: "QoS not supported", 0x9C: "Use another server", 0x9D: "Server moved",
	0x9E: "Shared Subscriptions not supported", 0x9F: "Connection rate exceeded", 0xA0: "Maximum connect time",
	0xA1: "Subscription identifiers not supported", 0xA2: "Wildcard Subscriptions not supported",
}

// debug prints -d lines in libmosquitto's log format.
func (s *Session) debug(sent bool, p packet.Packet) {
	s.idMu.Lock()
	if ack, ok := p.(*packet.Connack); ok && ack.Props.Present(packet.PropAssignedClientID) {
		s.id = string(ack.Props.AssignedClientID)
	}
	id := s.id
	s.idMu.Unlock()
	if id == "" {
		id = "(null)"
	}
	dir := "received"
	if sent {
		dir = "sending"
	}
	var b []byte
	line := func(format string, args ...any) {
		b = fmt.Appendf(b, "Client %s %s ", id, dir)
		b = fmt.Appendf(b, format, args...)
		b = append(b, '\n')
	}
	switch v := p.(type) {
	case *packet.Connect:
		line("CONNECT")
	case *packet.Connack:
		line("CONNACK (%d)", v.Code)
	case *packet.Publish:
		line("PUBLISH (d%d, q%d, r%d, m%d, '%s', ... (%d bytes))", b2i(v.Dup), v.QoS, b2i(v.Retain), v.PacketID, v.Topic, len(v.Payload))
	case *packet.Ack:
		switch {
		case sent && (v.Kind == packet.PUBACK || v.Kind == packet.PUBREC):
			line("%s (m%d, rc%d)", v.Kind, v.PacketID, v.Code)
		case sent:
			line("%s (m%d)", v.Kind, v.PacketID)
		case v.Kind == packet.PUBACK || v.Kind == packet.PUBCOMP:
			line("%s (Mid: %d, RC:%d)", v.Kind, v.PacketID, v.Code)
		default:
			line("%s (Mid: %d)", v.Kind, v.PacketID)
		}
	case *packet.Subscribe:
		for _, sub := range v.Subs {
			opts := byte(sub.RetainHandling<<4) | b2b(sub.NoLocal, 0x04) | b2b(sub.RetainAsPublished, 0x08)
			line("SUBSCRIBE (Mid: %d, Topic: %s, QoS: %d, Options: 0x%02x)", v.PacketID, sub.Filter, sub.QoS, opts)
		}
	case *packet.Unsubscribe:
		for _, f := range v.Filters {
			line("UNSUBSCRIBE (Mid: %d, Topic: %s)", v.PacketID, f)
		}
	case *packet.Disconnect:
		if sent {
			line("DISCONNECT")
		} else {
			line("DISCONNECT (%d)", v.Code)
		}
	case *packet.Auth:
		line("AUTH (%d)", v.Code)
	default:
		line("%s", p.Type())
	}
	s.Out.Write(b)
}

func b2b(b bool, v byte) byte {
	if b {
		return v
	}
	return 0
}

// Disconnect sends DISCONNECT with the -D disconnect properties.
func (s *Session) Disconnect(code packet.ReasonCode) {
	s.Client.Disconnect(code, &s.Config.DisconnectProps)
}
