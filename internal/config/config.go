package config

import (
	"crypto/tls"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Defaults that Mosquitto 2 documents, and mamori's own for its extensions.
const (
	DefaultPort                  = 1883
	DefaultAutoIDPrefix          = "auto-"
	DefaultMaxInflightMessages   = 20
	DefaultMaxQueuedMessages     = 1000
	DefaultMaxKeepalive          = 65535
	DefaultMaxTopicAlias         = 10
	DefaultAutosaveInterval      = 1800
	DefaultSysInterval           = 10 * time.Second
	DefaultPersistenceFile       = "mosquitto.db"
	DefaultUser                  = "mosquitto"
	DefaultCertExpiryWarningDays = 30
	// DefaultCRLRefreshInterval applies to crl_url when crl_refresh_interval
	// is not given: CAs commonly publish a new CRL daily, so an hour notices a
	// revocation well within a day without hammering the distribution point.
	DefaultCRLRefreshInterval = time.Hour
	// DefaultTLSPort is the port of the TLS listener that [Default] adds.
	DefaultTLSPort = 8883
)

// Config is a whole broker configuration: what a mosquitto.conf (and the
// files its include_dir names) says, with Mosquitto's defaults filled in.
// A Config returned by [Load], [Parse] or [Default] has passed [Validate].
type Config struct {
	// Files lists every file that was read, main file first, so that the
	// broker can tell the user what it loaded and watch them.
	Files []string

	// PerListenerSettings makes the authentication options (Security) per
	// listener: each Listener then has its own Security and the global one
	// is unused.
	PerListenerSettings bool
	// LocalOnly is set when the configuration defines no listener, port or
	// bind_address. Like Mosquitto 2, the broker then listens on the loopback
	// interface only and allows anonymous clients.
	LocalOnly bool
	// Listeners in Mosquitto's order: the explicit `listener` blocks as
	// written, then the default listener if one is configured.
	Listeners []*Listener

	// Bridges are the `connection` blocks, in file order.
	Bridges []*Bridge

	// Security holds the authentication options when PerListenerSettings is
	// false.
	Security Security

	Limits Limits

	RetainAvailable bool // retain_available (default true)
	// PersistentClientExpiration removes persistent sessions that have not
	// reconnected for this long; zero means never.
	PersistentClientExpiration time.Duration
	QueueQoS0Messages          bool   // queue_qos0_messages
	UpgradeOutgoingQoS         bool   // upgrade_outgoing_qos
	CheckRetainSource          bool   // check_retain_source (default true)
	AllowDuplicateMessages     bool   // allow_duplicate_messages (deprecated in Mosquitto 2, default true)
	ClientIDPrefixes           string // clientid_prefixes: only client ids with this prefix may connect

	Persistence Persistence
	Log         Log

	PIDFile       File          // pid_file
	User          string        // user to drop privileges to when started as root (default "mosquitto")
	SetTCPNoDelay bool          // set_tcp_nodelay
	SysInterval   time.Duration // sys_interval; zero disables $SYS
	// WebsocketsHeadersSize is the largest HTTP header block accepted on a
	// WebSocket listener, in bytes; zero means the implementation default.
	WebsocketsHeadersSize int
	EnableControlAPI      bool // enable_control_api (accepted, not provided; see Warnings)

	// MetricsListener is the ADDR:PORT of the HTTP endpoint serving
	// /metrics, /healthz and /readyz; empty when not configured.
	MetricsListener Value
	// CertExpiryWarningDays is how many days before a configured
	// certificate expires the broker starts warning; zero disables.
	CertExpiryWarningDays int
	// ReasonStrings (reason_strings, default false) adds a human-readable
	// reason string to the CONNACK, PUBACK, PUBREC and DISCONNECT failures
	// sent to MQTT 5 clients. Off, like Mosquitto: the strings would tell an
	// unauthenticated client why it was refused; the log has them anyway.
	// Meant for development.
	ReasonStrings bool

	// Warnings lists accepted options that mamori cannot honour exactly, and
	// lines that probably do not do what their author meant.
	Warnings []Warning
}

// Limits are the global per-client limits. Zero means "no limit" unless a
// field says otherwise.
type Limits struct {
	MaxKeepalive        int   // max_keepalive in seconds (default 65535)
	MaxPacketSize       int   // max_packet_size in bytes
	MessageSizeLimit    int   // message_size_limit: largest PUBLISH payload in bytes
	MaxInflightMessages int   // max_inflight_messages (default 20)
	MaxInflightBytes    int64 // max_inflight_bytes
	MaxQueuedMessages   int   // max_queued_messages (default 1000)
	MaxQueuedBytes      int64 // max_queued_bytes
	MemoryLimit         int64 // memory_limit in bytes
}

// Security is the set of authentication and access-control options that
// per_listener_settings makes per listener.
type Security struct {
	// AllowAnonymous is nil when the file does not set allow_anonymous.
	// Use [Config.AnonymousAllowed] for the effective value: Mosquitto 2
	// defaults to false when listeners are configured and to true in
	// local-only mode.
	AllowAnonymous          *bool
	AllowZeroLengthClientID bool   // allow_zero_length_clientid (default true)
	AutoIDPrefix            string // auto_id_prefix (default "auto-")
	PasswordFile            File
	ACLFile                 File
	PSKFile                 File
}

// Persistence is where and how often the broker saves its state.
type Persistence struct {
	Enabled  bool
	Location File   // persistence_location: a directory; empty means the working directory
	File     string // persistence_file (default "mosquitto.db")
	// AutosaveInterval is in seconds, or a number of changes when
	// AutosaveOnChanges is set, as in Mosquitto; zero saves only at exit.
	AutosaveInterval  int
	AutosaveOnChanges bool
}

// Path is the persistence file's full path.
func (p Persistence) Path() string {
	return filepath.Join(p.Location.Path, p.File)
}

// Log is where log lines go and which ones are written.
type Log struct {
	Dest  LogDest // log_dest (default stderr)
	File  File    // the file of `log_dest file PATH`
	Types LogType // log_type (default error, warning, notice, information)
	// Facility is the syslog local facility 0..7 of log_facility; -1 means
	// the daemon facility (the default).
	Facility           int
	Timestamp          bool   // log_timestamp (default true)
	TimestampFormat    string // log_timestamp_format, a strftime format; empty means Unix seconds
	ConnectionMessages bool   // connection_messages (default true)
	WebsocketsLevel    int    // websockets_log_level (libwebsockets only; see Warnings)
}

// Protocol is what a listener speaks.
type Protocol string

// Listener protocols.
const (
	ProtocolMQTT       Protocol = "mqtt"
	ProtocolWebSockets Protocol = "websockets"
)

// SocketDomain restricts a listener to one IP version.
type SocketDomain string

// Socket domains; the empty value listens on both.
const (
	SocketDomainAny  SocketDomain = ""
	SocketDomainIPv4 SocketDomain = "ipv4"
	SocketDomainIPv6 SocketDomain = "ipv6"
)

// File is a file or directory named by an option, with the line that named
// it, so that a later failure ("cannot read certfile") can point there.
type File struct {
	Path string
	Pos  Pos
}

// IsSet reports whether the option was given.
func (f File) IsSet() bool { return f.Path != "" }

// Value is a string option's value with the line that set it.
type Value struct {
	Text string
	Pos  Pos
}

// IsSet reports whether the option was given.
func (v Value) IsSet() bool { return v.Text != "" }

// Listener is one socket the broker accepts clients on, with its options.
type Listener struct {
	// Pos is the `listener` line; for the default listener, the first line
	// that configured it.
	Pos Pos
	// Default marks the listener configured by `port`, `bind_address` and
	// listener options placed before the first `listener` line, or the
	// local-only listener.
	Default bool
	Port    int
	// Bind is the address or host name to bind to; empty means all.
	Bind string
	// UnixPath is the socket path of `listener 0 PATH`; Port is then 0.
	UnixPath              string
	BindInterface         string
	SocketDomain          SocketDomain
	Protocol              Protocol
	MaxConnections        int // -1 means unlimited
	MaxQoS                int // max_qos (default 2)
	MaxTopicAlias         int // max_topic_alias (default 10)
	MountPoint            string
	UseUsernameAsClientID bool
	HTTPDir               File // http_dir: static files served on a WebSocket listener
	// AutoCert asks the broker to create a local CA and a server
	// certificate in its data directory and serve them; only [Default]
	// sets it.
	AutoCert bool
	TLS      TLSOptions
	// Security is the listener's own authentication options; set exactly
	// when Config.PerListenerSettings is true.
	Security *Security
}

// Network is the net.Listen network: "unix", "tcp4", "tcp6" or "tcp".
func (l *Listener) Network() string {
	switch {
	case l.UnixPath != "":
		return "unix"
	case l.SocketDomain == SocketDomainIPv4:
		return "tcp4"
	case l.SocketDomain == SocketDomainIPv6:
		return "tcp6"
	}
	return "tcp"
}

// Addr is the net.Listen address: host:port, :port or the socket path.
func (l *Listener) Addr() string {
	if l.UnixPath != "" {
		return l.UnixPath
	}
	return net.JoinHostPort(l.Bind, strconv.Itoa(l.Port))
}

// key identifies a listener across reloads.
func (l *Listener) key() string {
	if l.UnixPath != "" {
		return "unix " + l.UnixPath
	}
	return "tcp " + l.Addr()
}

// String names the listener for messages, e.g. "listener 8883" or
// "listener 1883 127.0.0.1".
func (l *Listener) String() string {
	switch {
	case l.UnixPath != "":
		return "listener 0 " + l.UnixPath
	case l.Bind != "":
		return "listener " + strconv.Itoa(l.Port) + " " + l.Bind
	case l.Default:
		return "default listener (port " + strconv.Itoa(l.Port) + ")"
	}
	return "listener " + strconv.Itoa(l.Port)
}

// CertKey is a server certificate and its key. A listener with several
// serves them by SNI; the first is the default.
type CertKey struct {
	CertFile File
	// KeyFile is empty when CertFile is a PKCS#12 bundle (.p12 or .pfx)
	// that holds the key.
	KeyFile File
	// Password decrypts an encrypted KeyFile or the PKCS#12 bundle
	// (keyfile_password).
	Password string
}

// IsPKCS12 reports whether the pair is a PKCS#12 bundle used without a
// separate key file.
func (c CertKey) IsPKCS12() bool { return c.KeyFile.Path == "" && isPKCS12Name(c.CertFile.Path) }

func isPKCS12Name(p string) bool {
	ext := strings.ToLower(filepath.Ext(p))
	return ext == ".p12" || ext == ".pfx"
}

// TLSOptions are a listener's TLS options. The TLS layer gives them their
// behaviour; this package only reads and checks them.
type TLSOptions struct {
	CAFile   File
	CAPath   File
	Certs    []CertKey // certfile/keyfile pairs in file order
	CRLFiles []File
	// CRLURLs are fetched every CRLRefreshInterval (crl_url).
	CRLURLs            []Value
	CRLRefreshInterval time.Duration
	Ciphers            Value // ciphers: OpenSSL names for TLS 1.2 and below, as written
	Ciphers13          Value // ciphers_tls1.3, as written
	// Version is tls_version as written ("tlsv1.2"); see MinVersion.
	Version               Value
	RequireCertificate    bool
	UseIdentityAsUsername bool
	UseSubjectAsUsername  bool
	OCSPStapling          bool
	PSKHint               string
	DHParamFile           File   // accepted and ignored: Go has no DHE
	Engine                string // tls_engine: accepted and ignored
	Keyform               string // tls_keyform: "pem" or "engine"
}

// Enabled reports whether the listener speaks TLS: it has a certificate or
// a PSK hint.
func (t *TLSOptions) Enabled() bool { return len(t.Certs) > 0 || t.PSKHint != "" }

// MinVersion is the minimum TLS version as a crypto/tls constant. Without
// tls_version it is TLS 1.2, mamori's floor.
func (t *TLSOptions) MinVersion() uint16 {
	switch t.Version.Text {
	case "tlsv1.1":
		return tls.VersionTLS11
	case "tlsv1.3":
		return tls.VersionTLS13
	}
	return tls.VersionTLS12
}

// SecurityFor returns the authentication options that apply to l: its own
// with per_listener_settings, the global ones otherwise.
func (c *Config) SecurityFor(l *Listener) *Security {
	if c.PerListenerSettings && l != nil && l.Security != nil {
		return l.Security
	}
	return &c.Security
}

// AnonymousAllowed is the effective allow_anonymous for l, with Mosquitto
// 2's rules: true in local-only mode (which includes [Default]), otherwise
// as set, defaulting to false.
func (c *Config) AnonymousAllowed(l *Listener) bool {
	if c.LocalOnly {
		return true
	}
	s := c.SecurityFor(l)
	return s.AllowAnonymous != nil && *s.AllowAnonymous
}

func defaultSecurity() Security {
	return Security{AllowZeroLengthClientID: true, AutoIDPrefix: DefaultAutoIDPrefix}
}

func newListener() *Listener {
	return &Listener{
		Protocol:       ProtocolMQTT,
		MaxConnections: -1,
		MaxQoS:         2,
		MaxTopicAlias:  DefaultMaxTopicAlias,
	}
}

// newConfig returns Mosquitto's defaults with no listener.
func newConfig() *Config {
	return &Config{
		LocalOnly: true,
		Security:  defaultSecurity(),
		Limits: Limits{
			MaxKeepalive:        DefaultMaxKeepalive,
			MaxInflightMessages: DefaultMaxInflightMessages,
			MaxQueuedMessages:   DefaultMaxQueuedMessages,
		},
		RetainAvailable:        true,
		CheckRetainSource:      true,
		AllowDuplicateMessages: true,
		Persistence: Persistence{
			File:             DefaultPersistenceFile,
			AutosaveInterval: DefaultAutosaveInterval,
		},
		Log: Log{
			Dest:               LogStderr,
			Types:              LogError | LogWarning | LogNotice | LogInformation,
			Facility:           -1,
			Timestamp:          true,
			ConnectionMessages: true,
		},
		User:                  DefaultUser,
		SysInterval:           DefaultSysInterval,
		CertExpiryWarningDays: DefaultCertExpiryWarningDays,
	}
}

// localListener is the listener of local-only mode. Mosquitto 2 binds
// 127.0.0.1 and ::1; mamori binds 127.0.0.1 as the SPEC says, which every
// client resolving "localhost" reaches.
func localListener(port int) *Listener {
	l := newListener()
	l.Default = true
	l.Port = port
	l.Bind = "127.0.0.1"
	return l
}

// Default is the configuration used when the broker is started without -c:
// like Mosquitto 2, plain MQTT on 127.0.0.1:1883 with anonymous clients
// allowed; in addition TLS on 127.0.0.1:8883 with a certificate the broker
// creates on first start (AutoCert).
func Default() *Config {
	c := newConfig()
	tlsL := localListener(DefaultTLSPort)
	tlsL.Default = false
	tlsL.AutoCert = true
	c.Listeners = []*Listener{localListener(DefaultPort), tlsL}
	return c
}
