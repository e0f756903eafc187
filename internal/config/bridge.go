package config

import (
	"fmt"
	"math"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Bridge defaults, as mosquitto.conf(5) of Mosquitto 2 documents them.
const (
	DefaultBridgeKeepalive   = 60 * time.Second
	DefaultBridgeIdleTimeout = 60 * time.Second
	DefaultBridgeThreshold   = 10
	// DefaultBridgeRestartBase and DefaultBridgeRestartCap are the
	// "decorrelated jitter" backoff Mosquitto 2 uses when restart_timeout
	// is not given.
	DefaultBridgeRestartBase = 5 * time.Second
	DefaultBridgeRestartCap  = 30 * time.Second
)

// BridgeDirection is the direction of a bridge topic.
type BridgeDirection string

// Bridge topic directions; "out" is the default.
const (
	BridgeOut  BridgeDirection = "out"
	BridgeIn   BridgeDirection = "in"
	BridgeBoth BridgeDirection = "both"
)

// BridgeStart is a bridge's start_type.
type BridgeStart string

// Start types: automatic (default), lazy and once.
const (
	StartAutomatic BridgeStart = "automatic"
	StartLazy      BridgeStart = "lazy"
	StartOnce      BridgeStart = "once"
)

// BridgeAddress is one host[:port] of `address`.
type BridgeAddress struct {
	Host string
	Port int
}

// String is host:port, as net.Dial takes it.
func (a BridgeAddress) String() string { return net.JoinHostPort(a.Host, strconv.Itoa(a.Port)) }

// BridgeTopic is one `topic` line: the filter subscribed to on each side
// and the prefixes that map one side's topic names to the other's.
type BridgeTopic struct {
	Pos         Pos
	Pattern     string // as written; "" when the line gave the place marker ""
	Direction   BridgeDirection
	QoS         byte
	LocalPrefix string
	// RemotePrefix is prepended to Pattern on the remote broker.
	RemotePrefix string
}

// LocalFilter is the filter on the local broker: local prefix + pattern.
func (t BridgeTopic) LocalFilter() string { return t.LocalPrefix + t.Pattern }

// RemoteFilter is the filter on the remote broker: remote prefix + pattern.
func (t BridgeTopic) RemoteFilter() string { return t.RemotePrefix + t.Pattern }

// Bridge is one `connection` block: a connection from this broker to a
// remote one, with the topics shared over it.
type Bridge struct {
	Pos        Pos // the `connection` line
	Name       string
	Addresses  []BridgeAddress
	RoundRobin bool
	Topics     []BridgeTopic
	// ProtocolVersion is 3 (mqttv31), 4 (mqttv311, the default) or 5 (mqttv50).
	ProtocolVersion byte
	CleanSession    bool // cleansession (default false)
	// LocalCleanSession is local_cleansession; it defaults to CleanSession.
	LocalCleanSession bool
	Keepalive         time.Duration // keepalive_interval (default 60 s, at least 5 s)
	IdleTimeout       time.Duration // idle_timeout for lazy bridges (default 60 s)
	StartType         BridgeStart
	// RestartBase is the constant restart delay, or the backoff base when
	// RestartCap is set (Mosquitto's decorrelated jitter).
	RestartBase time.Duration
	RestartCap  time.Duration
	Threshold   int // queued messages that start a lazy bridge (default 10)

	Notifications          bool // default true
	NotificationTopic      string
	NotificationsLocalOnly bool

	RemoteClientID string // default "<hostname>.<name>"
	LocalClientID  string // default "local.<remote client id>"
	RemoteUsername *string
	RemotePassword *string
	LocalUsername  *string
	LocalPassword  *string

	TryPrivate         bool // default true
	OutgoingRetain     bool // bridge_outgoing_retain (default true)
	AttemptUnsubscribe bool // bridge_attempt_unsubscribe (default true)
	MaxPacketSize      int  // bridge_max_packet_size; 0: no limit
	BindAddress        string

	TLS BridgeTLS
}

// BridgeTLS are the bridge_* TLS options. TLS is on when a CA file or path
// is given (or a PSK, which mamori does not offer for bridges yet).
type BridgeTLS struct {
	CAFile      File
	CAPath      File
	CertFile    File // PEM, or a PKCS#12 bundle (.p12/.pfx) without KeyFile
	KeyFile     File
	KeyPassword string // bridge_keyfile_password (mamori): encrypted key or PKCS#12
	Insecure    bool   // bridge_insecure: skip the host name check only
	ALPN        string
	Version     Value  // bridge_tls_version as written; empty: TLS 1.2 minimum
	ServerName  string // bridge_servername (mamori): SNI and verification name
	Identity    string // bridge_identity (PSK)
	PSK         string // bridge_psk, hex
	RequireOCSP bool
	UseOSCerts  bool // bridge_tls_use_os_certs
}

// Enabled reports whether the bridge connects with TLS.
func (t *BridgeTLS) Enabled() bool {
	return t.CAFile.IsSet() || t.CAPath.IsSet() || t.PSK != "" || t.UseOSCerts
}

// bridgeOptions are the options of Mosquitto's bridge blocks that do not
// start with "bridge_".
var bridgeOptions = []string{
	"address", "addresses", "cleansession", "clientid", "connection", "idle_timeout",
	"keepalive_interval", "local_cleansession", "local_clientid", "local_password",
	"local_username", "notification_topic", "notifications", "notifications_local_only",
	"password", "remote_clientid", "remote_password", "remote_username", "restart_timeout",
	"round_robin", "start_type", "threshold", "topic", "try_private", "username",
}

func isBridgeOption(name string) bool {
	return strings.HasPrefix(name, "bridge_") || slices.Contains(bridgeOptions, name)
}

// bridgeState is what the parser tracks for the open bridge block.
type bridgeState struct {
	b                 *Bridge
	localCleanSession *bool
	hasAddress        bool
}

// newBridge starts a `connection` block with Mosquitto's defaults.
func newBridge(name string, pos Pos) *Bridge {
	return &Bridge{
		Pos:                pos,
		Name:               name,
		ProtocolVersion:    4,
		Keepalive:          DefaultBridgeKeepalive,
		IdleTimeout:        DefaultBridgeIdleTimeout,
		StartType:          StartAutomatic,
		RestartBase:        DefaultBridgeRestartBase,
		RestartCap:         DefaultBridgeRestartCap,
		Threshold:          DefaultBridgeThreshold,
		Notifications:      true,
		TryPrivate:         true,
		OutgoingRetain:     true,
		AttemptUnsubscribe: true,
	}
}

// bridgeOption applies one line of a bridge block.
func (p *parser) bridgeOption(ln *Line) {
	if ln.Name == "connection" {
		p.endBridge()
		v, ok := p.arg(ln, "a connection name")
		if !ok {
			p.bridge = &bridgeState{b: newBridge("", ln.Pos)} // swallow the block's lines
			return
		}
		for _, b := range p.cfg.Bridges {
			if b.Name == v.Text {
				p.errorf(ln, "a bridge named %q is already defined at %s; connection names must be unique", v.Text, b.Pos)
			}
		}
		p.bridge = &bridgeState{b: newBridge(v.Text, ln.Pos)}
		return
	}
	if p.bridge == nil {
		p.errorf(ln, "this bridge option needs a `connection NAME` line before it")
		return
	}
	st := p.bridge
	b := st.b
	switch ln.Name {
	case "address", "addresses":
		p.bridgeAddresses(ln, st)
	case "round_robin":
		p.bridgeBool(ln, &b.RoundRobin)
	case "topic":
		p.bridgeTopic(ln, b)
	case "bridge_protocol_version":
		if w, ok := p.keyword(ln, "mqttv31", "mqttv311", "mqttv50"); ok {
			b.ProtocolVersion = map[string]byte{"mqttv31": 3, "mqttv311": 4, "mqttv50": 5}[w]
		}
	case "cleansession":
		p.bridgeBool(ln, &b.CleanSession)
	case "local_cleansession":
		var v bool
		if p.bridgeBool(ln, &v) {
			st.localCleanSession = &v
		}
	case "keepalive_interval":
		if n, ok := p.integer(ln, 5, 65535); ok {
			b.Keepalive = time.Duration(n) * time.Second
		}
	case "idle_timeout":
		if n, ok := p.integer(ln, 1, math.MaxInt32); ok {
			b.IdleTimeout = time.Duration(n) * time.Second
		}
	case "start_type":
		if w, ok := p.keyword(ln, "automatic", "lazy", "once"); ok {
			b.StartType = BridgeStart(w)
		}
	case "restart_timeout":
		p.restartTimeout(ln, b)
	case "threshold":
		if n, ok := p.integer(ln, 1, math.MaxInt32); ok {
			b.Threshold = int(n)
		}
	case "notifications":
		p.bridgeBool(ln, &b.Notifications)
	case "notifications_local_only":
		p.bridgeBool(ln, &b.NotificationsLocalOnly)
	case "notification_topic":
		if v, ok := p.bridgeString(ln, st, "a topic"); ok {
			if strings.ContainsAny(v, "+#") {
				p.errorf(ln, "value %q is not valid: a notification topic cannot contain the wildcards + or #", v)
				return
			}
			b.NotificationTopic = v
		}
	case "remote_clientid", "clientid":
		if v, ok := p.bridgeString(ln, st, "a client id"); ok {
			b.RemoteClientID = v
		}
	case "local_clientid":
		if v, ok := p.bridgeString(ln, st, "a client id"); ok {
			b.LocalClientID = v
		}
	case "remote_username", "username":
		if v, ok := p.bridgeString(ln, st, "a user name"); ok {
			b.RemoteUsername = &v
		}
	case "remote_password", "password":
		if v, ok := p.bridgeString(ln, st, "a password"); ok {
			b.RemotePassword = &v
		}
	case "local_username":
		if v, ok := p.bridgeString(ln, st, "a user name"); ok {
			b.LocalUsername = &v
		}
	case "local_password":
		if v, ok := p.bridgeString(ln, st, "a password"); ok {
			b.LocalPassword = &v
		}
	case "try_private":
		p.bridgeBool(ln, &b.TryPrivate)
	case "bridge_outgoing_retain":
		p.bridgeBool(ln, &b.OutgoingRetain)
	case "bridge_attempt_unsubscribe":
		p.bridgeBool(ln, &b.AttemptUnsubscribe)
	case "bridge_max_packet_size":
		if n, ok := p.integer(ln, 0, math.MaxUint32); ok {
			b.MaxPacketSize = int(n)
		}
	case "bridge_bind_address":
		if v, ok := p.bridgeString(ln, st, "an IP address"); ok {
			if net.ParseIP(v) == nil {
				p.errorf(ln, "value %q is not an IP address", v)
				return
			}
			b.BindAddress = v
		}
	default:
		p.bridgeTLSOption(ln, st)
	}
}

func (p *parser) bridgeTLSOption(ln *Line, st *bridgeState) {
	t := &st.b.TLS
	file := func(f *File) {
		if v, ok := p.bridgeString(ln, st, "a path"); ok {
			*f = File{Path: v, Pos: ln.Pos}
		}
	}
	switch ln.Name {
	case "bridge_cafile":
		file(&t.CAFile)
	case "bridge_capath":
		file(&t.CAPath)
	case "bridge_certfile":
		file(&t.CertFile)
	case "bridge_keyfile":
		file(&t.KeyFile)
	case "bridge_keyfile_password":
		if v, ok := p.bridgeString(ln, st, "a passphrase"); ok {
			t.KeyPassword = v
		}
	case "bridge_insecure":
		p.bridgeBool(ln, &t.Insecure)
		if t.Insecure {
			p.warn(ln, "bridge %q does not check the remote broker's host name: anyone with a certificate from its CA can impersonate it; use bridge_servername NAME instead when connecting by address", st.b.Name)
		}
	case "bridge_alpn":
		if v, ok := p.bridgeString(ln, st, "an ALPN protocol name"); ok {
			t.ALPN = v
		}
	case "bridge_tls_version":
		if w, ok := p.keyword(ln, "tlsv1.3", "tlsv1.2", "tlsv1.1"); ok && p.setOnce(st, ln) {
			t.Version = Value{Text: w, Pos: ln.Pos}
		}
	case "bridge_servername":
		if v, ok := p.bridgeString(ln, st, "a host name"); ok {
			t.ServerName = v
		}
	case "bridge_identity":
		if v, ok := p.bridgeString(ln, st, "a PSK identity"); ok {
			t.Identity = v
		}
	case "bridge_psk":
		if v, ok := p.bridgeString(ln, st, "a hexadecimal key"); ok {
			if !isHex(v) {
				p.errorf(ln, "value is not a hexadecimal key (write it without 0x)")
				return
			}
			t.PSK = v
		}
	case "bridge_require_ocsp":
		p.bridgeBool(ln, &t.RequireOCSP)
	case "bridge_tls_use_os_certs":
		p.bridgeBool(ln, &t.UseOSCerts)
	default:
		msg := fmt.Sprintf("unknown bridge option %q", ln.Name)
		if s := suggestBridge(ln.Name); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		}
		p.errs = append(p.errs, &Error{Pos: ln.Pos, Msg: msg})
	}
}

// bridgeTLSOptions are the bridge_* options handled by bridgeTLSOption and
// bridgeOption, for suggestions.
var bridgeTLSOptions = []string{
	"bridge_cafile", "bridge_capath", "bridge_certfile", "bridge_keyfile", "bridge_keyfile_password",
	"bridge_insecure", "bridge_alpn", "bridge_tls_version", "bridge_servername", "bridge_identity",
	"bridge_psk", "bridge_require_ocsp", "bridge_tls_use_os_certs", "bridge_protocol_version",
	"bridge_outgoing_retain", "bridge_attempt_unsubscribe", "bridge_max_packet_size", "bridge_bind_address",
}

func suggestBridge(name string) string {
	best, bestD := "", 3
	for _, k := range bridgeTLSOptions {
		if d := editDistance(name, k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

func isHex(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

func (p *parser) bridgeBool(ln *Line, dst *bool) bool {
	v, ok := p.boolean(ln)
	if ok {
		*dst = v
	}
	return ok
}

// bridgeString reads a string option of the bridge; a second one in the
// same block is an error, as in Mosquitto.
func (p *parser) bridgeString(ln *Line, st *bridgeState, expect string) (string, bool) {
	v, ok := p.str(ln, expect)
	if !ok || !p.setOnce(st, ln) {
		return "", false
	}
	return v.Text, true
}

// bridgeAddresses reads `address host[:port] [host[:port]]...`; several
// address lines add up, as in Mosquitto.
func (p *parser) bridgeAddresses(ln *Line, st *bridgeState) {
	if len(ln.Args) == 0 {
		p.errorf(ln, "missing value: expected host[:port], e.g. mqtt.example.com:8883")
		return
	}
	st.hasAddress = true
	for _, a := range ln.Args {
		host, port := a.Text, DefaultPort
		if strings.HasPrefix(host, "[") || strings.Count(host, ":") == 1 {
			h, ps, err := net.SplitHostPort(a.Text)
			n, perr := strconv.Atoi(ps)
			if err != nil || perr != nil || n < 1 || n > 65535 {
				p.errorf(ln, "address %q is not valid: expected host[:port] with a port 1..65535 (an IPv6 address needs [addr]:port)", a.Text)
				continue
			}
			host, port = h, n
		} else if strings.Contains(host, ":") {
			// Mosquitto takes the text after the last colon as the port.
			i := strings.LastIndexByte(host, ':')
			n, perr := strconv.Atoi(host[i+1:])
			if perr != nil || n < 1 || n > 65535 {
				p.errorf(ln, "address %q is not valid: an IPv6 address needs a port, written [addr]:port or addr:port", a.Text)
				continue
			}
			host, port = host[:i], n
		}
		if host == "" {
			p.errorf(ln, "address %q has no host", a.Text)
			continue
		}
		st.b.Addresses = append(st.b.Addresses, BridgeAddress{Host: host, Port: port})
	}
}

// restartTimeout: one value is a constant delay, two are the base and the
// cap of Mosquitto 2's backoff.
func (p *parser) restartTimeout(ln *Line, b *Bridge) {
	const expect = "seconds, or a base and a cap in seconds (e.g. 5 30)"
	if len(ln.Args) == 0 || len(ln.Args) > 2 {
		p.errorf(ln, "expected %s", expect)
		return
	}
	var vals []time.Duration
	for _, a := range ln.Args {
		n, err := strconv.ParseInt(a.Text, 10, 32)
		if err != nil || n < 1 {
			p.errorf(ln, "value %q is not valid: expected %s", a.Text, expect)
			return
		}
		vals = append(vals, time.Duration(n)*time.Second)
	}
	b.RestartBase, b.RestartCap = vals[0], 0
	if len(vals) == 2 {
		if vals[1] < vals[0] {
			p.errorf(ln, "the cap %s is below the base %s", ln.Args[1].Text, ln.Args[0].Text)
			return
		}
		b.RestartCap = vals[1]
	}
}

// bridgeTopic reads `topic PATTERN [in|out|both [QOS [LOCAL_PREFIX REMOTE_PREFIX]]]`
// with Mosquitto's rules for the place marker "".
func (p *parser) bridgeTopic(ln *Line, b *Bridge) {
	args := ln.Args
	if len(args) == 0 {
		p.errorf(ln, "missing value: expected PATTERN [in|out|both] [QOS] [LOCAL_PREFIX REMOTE_PREFIX]")
		return
	}
	if len(args) > 5 {
		p.errorf(ln, "too many words: expected PATTERN [in|out|both] [QOS] [LOCAL_PREFIX REMOTE_PREFIX]")
		return
	}
	unquote := func(s string) string {
		if s == `""` {
			return ""
		}
		return s
	}
	t := BridgeTopic{Pos: ln.Pos, Pattern: unquote(args[0].Text), Direction: BridgeOut}
	if len(args) > 1 {
		switch d := BridgeDirection(args[1].Text); d {
		case BridgeIn, BridgeOut, BridgeBoth:
			t.Direction = d
		default:
			p.errorf(ln, "direction %q is not valid: expected in, out or both", args[1].Text)
			return
		}
	}
	if len(args) > 2 {
		n, err := strconv.Atoi(args[2].Text)
		if err != nil || n < 0 || n > 2 {
			p.errorf(ln, "QoS %q is not valid: expected 0, 1 or 2", args[2].Text)
			return
		}
		t.QoS = byte(n)
	}
	if len(args) == 4 {
		p.errorf(ln, "a local prefix needs a remote prefix after it (write \"\" for an empty one)")
		return
	}
	if len(args) == 5 {
		t.LocalPrefix, t.RemotePrefix = unquote(args[3].Text), unquote(args[4].Text)
		for _, pre := range []string{t.LocalPrefix, t.RemotePrefix} {
			if strings.ContainsAny(pre, "+#") {
				p.errorf(ln, "prefix %q is not valid: prefixes cannot contain the wildcards + or #", pre)
				return
			}
		}
	}
	if t.Pattern == "" && (t.LocalPrefix == "" || t.RemotePrefix == "") {
		p.errorf(ln, "an empty pattern (\"\") needs both a local and a remote prefix: they are then the full local and remote topics")
		return
	}
	for _, f := range []string{t.LocalFilter(), t.RemoteFilter()} {
		if msg := filterProblem(f); msg != "" {
			p.errorf(ln, "topic %q is not a valid topic filter: %s", f, msg)
			return
		}
	}
	b.Topics = append(b.Topics, t)
}

// filterProblem checks a topic filter as MQTT defines it, without importing
// the broker's topic package (config imports nothing of ours).
func filterProblem(f string) string {
	if f == "" {
		return "it is empty"
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		if strings.Contains(l, "#") && (l != "#" || i != len(levels)-1) {
			return "# must be a whole level, and the last"
		}
		if strings.Contains(l, "+") && l != "+" {
			return "+ must be a whole level"
		}
	}
	return ""
}

// endBridge completes the open bridge block: defaults that depend on other
// options, and checks that need the whole block.
func (p *parser) endBridge() {
	st := p.bridge
	p.bridge = nil
	if st == nil || st.b.Name == "" {
		return
	}
	b := st.b
	ln := &Line{Pos: b.Pos, Name: "connection"}
	if !st.hasAddress {
		p.errorf(ln, "bridge %q has no `address`: give the remote broker as address host[:port]", b.Name)
	}
	if len(b.Topics) == 0 {
		p.errorf(ln, "bridge %q has no `topic` line: give at least one topic to share", b.Name)
	}
	if st.localCleanSession != nil {
		b.LocalCleanSession = *st.localCleanSession
	} else {
		b.LocalCleanSession = b.CleanSession
	}
	if b.RemoteClientID == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "localhost"
		}
		b.RemoteClientID = host + "." + b.Name
	}
	if b.LocalClientID == "" {
		b.LocalClientID = "local." + b.RemoteClientID
	}
	if b.LocalClientID == b.RemoteClientID {
		p.errorf(ln, "bridge %q: local_clientid and remote_clientid are both %q; they must differ (a bridge to this same broker would take over its own session)", b.Name, b.LocalClientID)
	}
	if b.NotificationTopic == "" {
		b.NotificationTopic = "$SYS/broker/connection/" + b.RemoteClientID + "/state"
	}
	if b.ProtocolVersion == 5 && !b.CleanSession {
		p.warn(ln, "bridge %q: an MQTT 5 bridge with cleansession false asks for no session expiry, as Mosquitto 2.0 does, so the remote drops its session (and what it queued) when the connection drops; use bridge_protocol_version mqttv311 to keep the remote session", b.Name)
	}
	if b.RemotePassword != nil && b.RemoteUsername == nil {
		p.errorf(ln, "bridge %q: remote_password is set without remote_username", b.Name)
	}
	t := &b.TLS
	if t.PSK != "" || t.Identity != "" {
		if t.PSK == "" || t.Identity == "" {
			p.errorf(ln, "bridge %q: bridge_identity and bridge_psk must be given together", b.Name)
		} else if t.CAFile.IsSet() || t.CAPath.IsSet() {
			p.errorf(ln, "bridge %q: use either certificates (bridge_cafile/bridge_capath) or a PSK (bridge_identity/bridge_psk), not both", b.Name)
		} else {
			p.errorf(ln, "bridge %q: TLS-PSK bridges need the PSK support, which mamori does not have yet; use certificates (bridge_cafile) meanwhile", b.Name)
		}
	}
	if (t.CertFile.IsSet() || t.KeyFile.IsSet() || t.Insecure || t.ALPN != "" || t.Version.IsSet() || t.ServerName != "") && !t.Enabled() {
		p.errorf(ln, "bridge %q has TLS options but neither bridge_cafile nor bridge_capath: give the CA that signed the remote broker's certificate", b.Name)
	}
	if t.KeyFile.IsSet() && !t.CertFile.IsSet() {
		p.errorf(ln, "bridge %q: bridge_keyfile is set without bridge_certfile", b.Name)
	}
	if t.CertFile.IsSet() && !t.KeyFile.IsSet() && !isPKCS12Name(t.CertFile.Path) {
		p.errorf(ln, "bridge %q: bridge_certfile needs bridge_keyfile (or a PKCS#12 .p12/.pfx bundle)", b.Name)
	}
	if t.RequireOCSP {
		p.errorf(ln, "bridge %q: bridge_require_ocsp is not supported by mamori's bridges yet; refusing rather than connecting without the OCSP check", b.Name)
	}
	p.cfg.Bridges = append(p.cfg.Bridges, b)
}
