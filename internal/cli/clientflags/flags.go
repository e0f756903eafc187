// Package clientflags holds what "mamori pub", "sub" and "rr" share: their
// command line (every mosquitto_pub/sub/rr 2.x flag, with mosquitto's error
// messages, plus mamori's TLS additions), the connection it describes, the
// connection error messages, -d debug output and the -F output format.
package clientflags

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/mamori-mqtt/mamori/internal/packet"
	"github.com/mamori-mqtt/mamori/internal/tlsprobe"
)

// Kind says which of the three commands is parsing, since each accepts a
// different subset of the flags.
type Kind int

// The three client commands.
const (
	Pub Kind = 1 << iota
	Sub
	RR
)

// Name is the mosquitto program name of k, used in messages.
func (k Kind) Name() string {
	switch k {
	case Pub:
		return "mosquitto_pub"
	case Sub:
		return "mosquitto_sub"
	}
	return "mosquitto_rr"
}

// Publish modes (mosquitto_pub -m, -f, -s, -l, -n).
const (
	ModeNone = iota
	ModeMessage
	ModeFile
	ModeStdinFile
	ModeStdinLine
	ModeNull
)

// Config is a parsed command line.
type Config struct {
	Kind Kind

	Host        string
	Port        int // -1: not given
	UnixSocket  bool
	BindAddress string
	WebSockets  bool
	Proxy       *ProxyURL
	NoDelay     bool

	Username, Password *string
	ID, IDPrefix       string
	KeepAlive          int
	CleanSession       bool
	SessionExpiry      int64 // -1: not given
	Version            packet.Version
	QoS                byte
	Retain             bool
	MaxInflight        int
	Debug, Quiet       bool

	Topic         string   // pub, rr
	Topics        []string // sub
	ResponseTopic string   // rr -e
	FilterOuts    []string
	UnsubTopics   []string

	Format            string
	Verbose, Pretty   bool
	EOL               bool
	MsgCount          int
	Timeout           int
	ExitAfterSub      bool
	NoRetain          bool
	RetainedOnly      bool
	RemoveRetained    bool
	RetainAsPublished bool
	RandomFilter      int // per 10,000

	Mode        int
	Message     []byte
	File        string
	RepeatCount int
	RepeatDelay time.Duration

	WillTopic   *string
	WillPayload *string
	WillQoS     byte
	WillRetain  bool

	TLS      tlsprobe.ClientOptions
	TLSOther bool // --tls-engine, --keyform...: accepted, not supported

	ConnectProps, PublishProps, SubscribeProps, UnsubscribeProps packet.Properties
	DisconnectProps, WillProps, AuthProps                        packet.Properties

	topicAlias bool
	dupProp    []string
	badProp    []string
}

// ProxyURL is a parsed --proxy socks5h://[user[:pass]@]host[:port].
type ProxyURL struct {
	Host, Username, Password string
	Port                     int
}

// ArgError is a command-line error; Msg is printed as is, followed by the
// hint to run --help, as mosquitto does.
type ArgError struct{ Msg string }

func (e *ArgError) Error() string { return strings.TrimSpace(e.Msg) }

func argErr(msg string) error { return &ArgError{Msg: msg} }

// Errors that end parsing without one.
var (
	ErrHelp    = errors.New("help requested")
	ErrVersion = errors.New("version requested")
)

// flagSpec is one flag: its names, whether it takes a value, which commands
// accept it, and the noun of mosquitto's "argument given but no ..."
// message.
type flagSpec struct {
	long, short string
	value       bool
	kinds       Kind
	noun        string // "topic" in "-t argument given but no topic specified"
	display     string // name used in that message when not "-short"
}

const all = Pub | Sub | RR

var specs = []flagSpec{
	{"bind-address", "A", true, all, "address", ""},
	{"cafile", "", true, all, "file", ""},
	{"capath", "", true, all, "directory", ""},
	{"cert", "", true, all, "file", ""},
	{"cert-pass", "", true, all, "passphrase", ""},
	{"ciphers", "", true, all, "ciphers", ""},
	{"count", "C", true, Sub, "count", ""},
	{"disable-clean-session", "c", false, all, "", ""},
	{"debug", "d", false, all, "", ""},
	{"property", "D", true, all, "", ""},
	{"response-topic", "e", true, RR, "response topic", ""},
	{"exit-after-sub", "E", false, Sub, "", ""},
	{"file", "f", true, Pub | RR, "file", ""},
	{"format", "F", true, Sub | RR, "format", ""},
	{"help", "", false, all, "", ""},
	{"host", "h", true, all, "host", ""},
	{"insecure", "", false, all, "", ""},
	{"id", "i", true, all, "id", ""},
	{"id-prefix", "I", true, all, "id prefix", ""},
	{"keepalive", "k", true, all, "keepalive", ""},
	{"key", "", true, all, "file", ""},
	{"keyform", "", true, all, "keyform", ""},
	{"url", "L", true, all, "URL", ""},
	{"stdin-line", "l", false, Pub, "", ""},
	{"message", "m", true, Pub | RR, "message", ""},
	{"max-inflight", "M", true, all, "", ""},
	{"nodelay", "", false, all, "", ""},
	{"null-message", "n", false, Pub | RR, "", ""},
	{"no-eol", "N", false, Sub | RR, "", ""},
	{"port", "p", true, all, "port", ""},
	{"pretty", "", false, Sub | RR, "", ""},
	{"pw", "P", true, all, "password", ""},
	{"proxy", "", true, all, "proxy url", ""},
	{"psk", "", true, all, "key", ""},
	{"psk-identity", "", true, all, "identity", ""},
	{"qos", "q", true, all, "QoS", ""},
	{"quiet", "", false, all, "", ""},
	{"retain", "r", false, Pub, "", ""},
	{"no-retained", "R", false, Sub | RR, "", ""},
	{"random-filter", "", true, Sub, "chance", ""},
	{"remove-retained", "", false, Sub, "", ""},
	{"repeat", "", true, Pub, "count", ""},
	{"repeat-delay", "", true, Pub, "time", ""},
	{"retain-as-published", "", false, Sub | RR, "", ""},
	{"retained-only", "", false, Sub, "", ""},
	{"stdin-file", "s", false, Pub | RR, "", ""},
	{"servername", "", true, all, "name", ""},
	{"topic", "t", true, all, "topic", ""},
	{"filter-out", "T", true, Sub, "topic filter", ""},
	{"tls-alpn", "", true, all, "protocol", ""},
	{"tls-engine", "", true, all, "engine_id", ""},
	{"tls-engine-kpass-sha1", "", true, all, "kpass sha1", ""},
	{"tls-keylog", "", true, all, "file", ""},
	{"tls-use-os-certs", "", false, all, "", ""},
	{"tls-version", "", true, all, "version", ""},
	{"unsubscribe", "U", true, Sub, "unsubscribe topic", ""},
	{"username", "u", true, all, "username", ""},
	{"unix", "", true, all, "socket path", ""},
	{"protocol-version", "V", true, all, "version", "--protocol-version"},
	{"verbose", "v", false, Sub | RR, "", ""},
	{"version", "", false, all, "", ""},
	{"timeout", "W", true, Sub | RR, "timeout", ""},
	{"will-payload", "", true, all, "will payload", ""},
	{"will-qos", "", true, all, "will QoS", ""},
	{"will-retain", "", false, all, "", ""},
	{"will-topic", "", true, all, "will topic", ""},
	{"ws", "", false, all, "", ""},
	{"session-expiry-interval", "x", true, all, "session expiry interval", ""},
}

func (s *flagSpec) name() string {
	if s.display != "" {
		return s.display
	}
	if s.short != "" {
		return "-" + s.short
	}
	return "--" + s.long
}

func (s *flagSpec) missing() error {
	switch s.long {
	case "max-inflight":
		return argErr("Error: -M argument given but max_inflight not specified.\n\n")
	case "property":
		return argErr("Error: --property argument given but not enough arguments specified.\n\n")
	}
	return argErr(fmt.Sprintf("Error: %s argument given but no %s specified.\n\n", s.name(), s.noun))
}

// nopValue lets pflag find and split flags while Parse applies them itself,
// in order, with mosquitto's checks and messages.
type nopValue struct{ bool bool }

func (v *nopValue) String() string { return "" }
func (v *nopValue) Set(string) error {
	return nil
}
func (v *nopValue) Type() string {
	if v.bool {
		return "bool"
	}
	return "string"
}

// propSep joins the words of "-D command name value" into one pflag value.
const propSep = "\x00"

// Parse reads args (without the program name) for command k. Options from
// mosquitto's per-user configuration file ($XDG_CONFIG_HOME/mosquitto_pub or
// ~/.config/mosquitto_pub, and _sub, _rr) come first, as mosquitto reads
// them. It returns ErrHelp, ErrVersion or an *ArgError.
func Parse(k Kind, args []string) (*Config, error) {
	c := &Config{
		Kind: k, Port: -1, KeepAlive: 60, CleanSession: true, SessionExpiry: -1,
		Version: packet.V311, EOL: true, RepeatCount: 1, RandomFilter: 10000, MaxInflight: 20,
	}
	if k == RR {
		c.Version = packet.V5
		c.MsgCount = 1
	}
	if fileArgs, err := optionsFile(k); err != nil {
		return nil, err
	} else if len(fileArgs) > 0 {
		if err := c.parseArgs(fileArgs); err != nil {
			return nil, err
		}
	}
	if err := c.parseArgs(args); err != nil {
		return nil, err
	}
	return c, c.finish()
}

func optionsFile(k Kind) ([]string, error) {
	dir := os.Getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home := os.Getenv("HOME")
		if home == "" {
			return nil, nil
		}
		dir = filepath.Join(home, ".config")
	}
	f, err := os.Open(filepath.Join(dir, k.Name()))
	if err != nil {
		return nil, nil // no file: nothing to read, as mosquitto
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r\n")
		if line == "" || line[0] == '#' {
			continue
		}
		opt, rest, found := strings.Cut(line, " ")
		out = append(out, opt)
		if found {
			out = append(out, rest)
		}
	}
	return out, nil
}

func (c *Config) flagSet() (*pflag.FlagSet, map[string]*flagSpec) {
	fs := pflag.NewFlagSet(c.Kind.Name(), pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	byName := make(map[string]*flagSpec)
	for i := range specs {
		s := &specs[i]
		if s.kinds&c.Kind == 0 {
			continue
		}
		f := fs.VarPF(&nopValue{bool: !s.value}, s.long, s.short, "")
		if !s.value {
			f.NoOptDefVal = "true"
		}
		byName[s.long] = s
	}
	return fs, byName
}

// joinProperties rewrites "-D a b c [d]" into one argument, because pflag
// gives a flag one value; the words stay separated by propSep. It needs the
// flag table to skip the values of other flags ("-m -D" publishes "-D").
func joinProperties(args []string, fs *pflag.FlagSet) ([]string, error) {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		var f *pflag.Flag
		switch {
		case strings.HasPrefix(a, "--") && !strings.Contains(a, "="):
			f = fs.Lookup(a[2:])
		case len(a) == 2 && a[0] == '-':
			f = fs.ShorthandLookup(a[1:])
		}
		if f == nil {
			out = append(out, a)
			continue
		}
		if f.Name == "property" {
			rest := args[i+1:]
			n := 3
			if len(rest) >= 2 && rest[1] == "user-property" {
				n = 4
			}
			if len(rest) < n {
				return nil, argErr("Error: --property argument given but not enough arguments specified.\n\n")
			}
			out = append(out, "--property", strings.Join(rest[:n], propSep))
			i += n
			continue
		}
		out = append(out, a)
		if f.NoOptDefVal == "" && i+1 < len(args) {
			out = append(out, args[i+1])
			i++
		}
	}
	return out, nil
}

func (c *Config) parseArgs(args []string) error {
	fs, byName := c.flagSet()
	args, err := joinProperties(args, fs)
	if err != nil {
		return err
	}
	var stop error
	err = fs.ParseAll(args, func(f *pflag.Flag, value string) error {
		if stop != nil {
			return stop
		}
		stop = c.apply(byName[f.Name], value)
		return stop
	})
	if err != nil {
		var ae *ArgError
		var vr *pflag.ValueRequiredError
		var ne *pflag.NotExistError
		switch {
		case errors.As(err, &ae), errors.Is(err, ErrHelp), errors.Is(err, ErrVersion):
			return err
		case errors.As(err, &vr):
			return byName[vr.GetFlag().Name].missing()
		case errors.As(err, &ne):
			if sh := ne.GetSpecifiedShortnames(); sh != "" {
				return argErr(fmt.Sprintf("Error: Unknown option '-%s'.\n", sh))
			}
			return argErr(fmt.Sprintf("Error: Unknown option '--%s'.\n", ne.GetSpecifiedName()))
		case errors.Is(err, pflag.ErrHelp):
			return ErrHelp
		}
		return argErr(fmt.Sprintf("Error: %v.\n", err))
	}
	if rest := fs.Args(); len(rest) > 0 {
		return argErr(fmt.Sprintf("Error: Unknown option '%s'.\n", rest[0]))
	}
	return nil
}

// apply sets one flag, with mosquitto's checks.
func (c *Config) apply(s *flagSpec, v string) error {
	switch s.long {
	case "bind-address":
		c.BindAddress = v
	case "cafile":
		c.TLS.CAFile = v
	case "capath":
		c.TLS.CAPath = v
	case "cert":
		c.TLS.CertFile = v
	case "cert-pass":
		c.TLS.CertPass = v
	case "ciphers":
		c.TLS.Ciphers = v
	case "count":
		c.MsgCount = atoi(v)
		if c.MsgCount < 1 {
			return argErr(fmt.Sprintf("Error: Invalid message count \"%d\".\n\n", c.MsgCount))
		}
	case "disable-clean-session":
		c.CleanSession = false
	case "debug":
		c.Debug = true
	case "property":
		if _, err := c.addProperty(strings.Split(v, propSep)); err != nil {
			return err
		}
		c.Version = packet.V5
	case "response-topic":
		if err := checkTopic(v, "-e", "response"); err != nil {
			return err
		}
		c.ResponseTopic = v
	case "exit-after-sub":
		c.ExitAfterSub = true
	case "file":
		if c.Mode != ModeNone {
			return argErr("Error: Only one type of message can be sent at once.\n\n")
		}
		c.Mode, c.File = ModeFile, v
	case "format":
		if err := CheckFormat(v); err != nil {
			return err
		}
		c.Format = v
	case "help":
		return ErrHelp
	case "host":
		c.Host = v
	case "insecure":
		c.TLS.Insecure = true
	case "id":
		if c.IDPrefix != "" {
			return argErr("Error: -i and -I argument cannot be used together.\n\n")
		}
		c.ID = v
	case "id-prefix":
		if c.ID != "" {
			return argErr("Error: -i and -I argument cannot be used together.\n\n")
		}
		c.IDPrefix = v
	case "keepalive":
		c.KeepAlive = atoi(v)
		if c.KeepAlive < 5 || c.KeepAlive > 65535 {
			return argErr("Error: Invalid keepalive given, it must be between 5 and 65535 inclusive.\n\n")
		}
	case "key":
		c.TLS.KeyFile = v
	case "keyform", "tls-engine", "tls-engine-kpass-sha1":
		c.TLSOther = true
	case "url":
		return c.parseURL(v)
	case "stdin-line":
		return c.setMode(ModeStdinLine)
	case "message":
		if c.Mode != ModeNone {
			return argErr("Error: Only one type of message can be sent at once.\n\n")
		}
		if len(v) > packet.MaxRemaining {
			return argErr(fmt.Sprintf("Error: Message length must be less than %d bytes.\n\n", packet.MaxRemaining))
		}
		c.Mode, c.Message = ModeMessage, []byte(v)
	case "max-inflight":
		c.MaxInflight = atoi(v)
		if c.MaxInflight < 1 {
			return argErr("Error: Maximum inflight messages must be greater than 0.\n\n")
		}
	case "nodelay":
		c.NoDelay = true
	case "null-message":
		return c.setMode(ModeNull)
	case "no-eol":
		c.EOL = false
	case "port":
		c.Port = atoi(v)
		if c.Port < 0 || c.Port > 65535 {
			return argErr(fmt.Sprintf("Error: Invalid port given: %d\n", c.Port))
		}
	case "pretty":
		c.Pretty = true
	case "pw":
		c.Password = &v
	case "proxy":
		p, err := parseProxy(v)
		if err != nil {
			return err
		}
		c.Proxy = p
	case "psk":
		c.TLS.PSK = v
	case "psk-identity":
		c.TLS.PSKIdentity = v
	case "qos":
		q := atoi(v)
		if q < 0 || q > 2 {
			return argErr(fmt.Sprintf("Error: Invalid QoS given: %d\n", q))
		}
		c.QoS = byte(q)
	case "quiet":
		c.Quiet = true
	case "retain":
		c.Retain = true
	case "no-retained":
		c.NoRetain = true
	case "random-filter":
		f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
		c.RandomFilter = int(10 * f)
		if c.RandomFilter > 10000 || c.RandomFilter < 1 {
			return argErr("Error: --random-filter chance must be between 0.1-100.0\n\n")
		}
	case "remove-retained":
		c.RemoveRetained = true
	case "repeat":
		c.RepeatCount = atoi(v)
		if c.RepeatCount < 1 {
			return argErr("Error: --repeat argument must be >0.\n\n")
		}
	case "repeat-delay":
		f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if f < 0 {
			return argErr("Error: --repeat-delay argument must be >=0.0.\n\n")
		}
		c.RepeatDelay = time.Duration(f * float64(time.Second))
	case "retain-as-published":
		c.RetainAsPublished = true
	case "retained-only":
		c.RetainedOnly = true
	case "stdin-file":
		return c.setMode(ModeStdinFile)
	case "servername":
		c.TLS.ServerName = v
	case "topic":
		return c.addTopic(v, "-t")
	case "filter-out":
		if err := checkTopic(v, "-T", "filter"); err != nil {
			return err
		}
		c.FilterOuts = append(c.FilterOuts, v)
	case "tls-alpn":
		c.TLS.ALPN = append(c.TLS.ALPN, v)
	case "tls-keylog":
		c.TLS.KeyLogFile = v
	case "tls-use-os-certs":
		c.TLS.UseOSCerts = true
	case "tls-version":
		c.TLS.TLSVersion = v
	case "unsubscribe":
		if err := checkTopic(v, "-U", "unsubscribe"); err != nil {
			return err
		}
		c.UnsubTopics = append(c.UnsubTopics, v)
	case "username":
		c.Username = &v
	case "unix":
		c.Host, c.Port, c.UnixSocket = v, 0, true
	case "protocol-version":
		switch v {
		case "mqttv31", "31":
			c.Version = packet.V31
		case "mqttv311", "311":
			c.Version = packet.V311
		case "mqttv5", "5":
			c.Version = packet.V5
		default:
			return argErr("Error: Invalid protocol version argument given.\n\n")
		}
	case "verbose":
		c.Verbose = true
	case "version":
		return ErrVersion
	case "timeout":
		t := atoi(v)
		if t < 1 {
			return argErr(fmt.Sprintf("Error: Invalid timeout \"%d\".\n\n", t))
		}
		c.Timeout = t
	case "will-payload":
		c.WillPayload = &v
	case "will-qos":
		q := atoi(v)
		if q < 0 || q > 2 {
			return argErr(fmt.Sprintf("Error: Invalid will QoS %d.\n\n", q))
		}
		c.WillQoS = byte(q)
	case "will-retain":
		c.WillRetain = true
	case "will-topic":
		if err := checkTopic(v, "--will-topic", "will"); err != nil {
			return err
		}
		c.WillTopic = &v
	case "ws":
		c.WebSockets = true
	case "session-expiry-interval":
		return c.parseExpiry(v)
	}
	return nil
}

func (c *Config) setMode(m int) error {
	if c.Mode != ModeNone {
		return argErr("Error: Only one type of message can be sent at once.\n\n")
	}
	c.Mode = m
	return nil
}

func (c *Config) parseExpiry(v string) error {
	if v == "∞" {
		c.SessionExpiry = 4294967295
		return nil
	}
	n, err := strconv.ParseInt(v, 0, 64)
	if err != nil {
		var ne *strconv.NumError
		if errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange) {
			return argErr("Error: session-expiry-interval out of range.\n\n")
		}
		return argErr("Error: session-expiry-interval not a number.\n\n")
	}
	if n > 4294967295 || n < -1 {
		return argErr("Error: session-expiry-interval out of range.\n\n")
	}
	if n == -1 {
		n = 4294967295
	}
	c.SessionExpiry = n
	return nil
}

// addTopic records -t (or the -L topic) for the command.
func (c *Config) addTopic(t, arg string) error {
	if !packet.ValidUTF8([]byte(t)) {
		return argErr(fmt.Sprintf("Error: Malformed UTF-8 in %s argument.\n\n", arg))
	}
	if c.Kind == Sub {
		if !validFilter(t) {
			return argErr(fmt.Sprintf("Error: Invalid subscription topic '%s', are all '+' and '#' wildcards correct?\n", t))
		}
		c.Topics = append(c.Topics, t)
		return nil
	}
	if !validTopicName(t) {
		return argErr(fmt.Sprintf("Error: Invalid publish topic '%s', does it contain '+' or '#'?\n", t))
	}
	c.Topic = t
	return nil
}

// checkTopic validates the topic arguments other than -t.
func checkTopic(t, arg, what string) error {
	if !packet.ValidUTF8([]byte(t)) {
		return argErr(fmt.Sprintf("Error: Malformed UTF-8 in %s argument.\n\n", arg))
	}
	switch what {
	case "response", "will":
		if !validTopicName(t) {
			return argErr(fmt.Sprintf("Error: Invalid %s topic '%s', does it contain '+' or '#'?\n", what, t))
		}
	default:
		if !validFilter(t) {
			return argErr(fmt.Sprintf("Error: Invalid %s topic '%s', are all '+' and '#' wildcards correct?\n", what, t))
		}
	}
	return nil
}

// validTopicName: non-empty, no wildcards, at most 65535 bytes.
func validTopicName(t string) bool {
	return t != "" && len(t) <= 65535 && !strings.ContainsAny(t, "+#")
}

// validFilter: wildcards only as whole levels, '#' only last.
func validFilter(f string) bool {
	if f == "" || len(f) > 65535 {
		return false
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		if strings.ContainsAny(l, "+#") && len(l) != 1 {
			return false
		}
		if l == "#" && i != len(levels)-1 {
			return false
		}
	}
	return true
}

// finish applies the checks mosquitto makes once all options are read.
func (c *Config) finish() error {
	if c.WillPayload != nil && c.WillTopic == nil {
		return argErr("Error: Will payload given, but no will topic given.\n")
	}
	if c.WillRetain && c.WillTopic == nil {
		return argErr("Error: Will retain given, but no will topic given.\n")
	}
	if (c.TLS.CertFile != "" && c.TLS.KeyFile == "" && !isPKCS12(c.TLS.CertFile)) || (c.TLS.KeyFile != "" && c.TLS.CertFile == "") {
		return argErr("Error: Both certfile and keyfile must be provided if one of them is set.\n")
	}
	if (c.TLS.CAFile != "" || c.TLS.CAPath != "") && c.TLS.PSK != "" {
		return argErr("Error: Only one of --psk or --cafile/--capath may be used at once.\n")
	}
	if c.TLS.PSK != "" && c.TLS.PSKIdentity == "" {
		return argErr("Error: --psk-identity required if --psk used.\n")
	}
	if c.Version == packet.V5 {
		if !c.CleanSession && c.SessionExpiry == -1 {
			c.SessionExpiry = 4294967295
		}
		if c.SessionExpiry > 0 {
			if c.SessionExpiry == 4294967295 && (c.IDPrefix != "" || c.ID == "") {
				return argErr("Error: You must provide a client id if you are using an infinite session expiry interval.\n")
			}
			c.ConnectProps.Set(packet.PropSessionExpiry)
			c.ConnectProps.SessionExpiry = uint32(c.SessionExpiry)
		}
	} else if !c.CleanSession && (c.IDPrefix != "" || c.ID == "") {
		return argErr("Error: You must provide a client id if you are using the -c option.\n")
	}
	if c.Kind == Sub && len(c.Topics) == 0 && len(c.UnsubTopics) == 0 {
		return argErr("Error: You must specify a topic to subscribe to.\n")
	}
	if c.Host == "" {
		c.Host = "localhost"
	}
	for _, p := range []struct {
		name  string
		props *packet.Properties
		cmd   string
	}{{"CONNECT", &c.ConnectProps, "connect"}, {"PUBLISH", &c.PublishProps, "publish"},
		{"SUBSCRIBE", &c.SubscribeProps, "subscribe"}, {"UNSUBSCRIBE", &c.UnsubscribeProps, "unsubscribe"},
		{"DISCONNECT", &c.DisconnectProps, "disconnect"}, {"Will", &c.WillProps, "will"}} {
		if contains(c.badProp, p.cmd) {
			return argErr(fmt.Sprintf("Error in %s properties: A network protocol error occurred when communicating with the broker.\n", p.name))
		}
		if contains(c.dupProp, p.cmd) {
			return argErr(fmt.Sprintf("Error in %s properties: Duplicate property in property list\n", p.name))
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func isPKCS12(path string) bool {
	ext := strings.ToLower(filepath.Ext(path))
	return ext == ".p12" || ext == ".pfx"
}

// TopicAlias reports whether -D publish topic-alias was given: then every
// publish after the first is sent with an empty topic, as mosquitto_pub does.
func (c *Config) TopicAlias() bool { return c.topicAlias }

// UsesTLS reports whether the flags ask for TLS.
func (c *Config) UsesTLS() bool {
	t := &c.TLS
	return t.CAFile != "" || t.CAPath != "" || t.PSK != "" || t.UseOSCerts ||
		(!c.UnixSocket && c.EffectivePort() == 8883)
}

// EffectivePort is the port to dial: the one given, or 8883 with a CA or
// PSK and 1883 otherwise, as mosquitto chooses.
func (c *Config) EffectivePort() int {
	if c.Port >= 0 {
		return c.Port
	}
	if c.TLS.CAFile != "" || c.TLS.CAPath != "" || c.TLS.PSK != "" {
		return 8883
	}
	return 1883
}
