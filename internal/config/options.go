package config

import (
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// handler applies one option line.
type handler func(p *parser, ln *Line)

// options maps every mosquitto.conf option mamori knows (except the
// include_dir, plugin-option and bridge families, which line dispatches) to
// its handler. Scope (global, per listener, or authentication) is decided
// by the handler, following mosquitto.conf(5) and Mosquitto 2.0's conf.c.
var options = map[string]handler{
	// General, global options.
	"allow_duplicate_messages":     globalBool(func(c *Config) *bool { return &c.AllowDuplicateMessages }),
	"autosave_interval":            globalInt(math.MinInt32, math.MaxInt32, func(c *Config, n int64) { c.Persistence.AutosaveInterval = int(max(n, 0)) }),
	"autosave_on_changes":          globalBool(func(c *Config) *bool { return &c.Persistence.AutosaveOnChanges }),
	"check_retain_source":          globalBool(func(c *Config) *bool { return &c.CheckRetainSource }),
	"clientid_prefixes":            globalString(func(c *Config) *string { return &c.ClientIDPrefixes }),
	"connection_messages":          globalBool(func(c *Config) *bool { return &c.Log.ConnectionMessages }),
	"enable_control_api":           enableControlAPI,
	"log_dest":                     logDest,
	"log_facility":                 globalInt(0, 7, func(c *Config, n int64) { c.Log.Facility = int(n) }),
	"log_timestamp":                globalBool(func(c *Config) *bool { return &c.Log.Timestamp }),
	"log_timestamp_format":         globalString(func(c *Config) *string { return &c.Log.TimestampFormat }),
	"log_type":                     logType,
	"max_inflight_bytes":           globalInt(math.MinInt64, math.MaxInt64, func(c *Config, n int64) { c.Limits.MaxInflightBytes = max(n, 0) }),
	"max_inflight_messages":        maxInflightMessages,
	"max_keepalive":                globalInt(10, 65535, func(c *Config, n int64) { c.Limits.MaxKeepalive = int(n) }),
	"max_packet_size":              maxPacketSize,
	"max_queued_bytes":             globalInt(math.MinInt64, math.MaxInt64, func(c *Config, n int64) { c.Limits.MaxQueuedBytes = max(n, 0) }),
	"max_queued_messages":          globalInt(math.MinInt32, math.MaxInt32, func(c *Config, n int64) { c.Limits.MaxQueuedMessages = int(max(n, 0)) }),
	"memory_limit":                 memoryLimit,
	"message_size_limit":           globalInt(0, 268435455, func(c *Config, n int64) { c.Limits.MessageSizeLimit = int(n) }),
	"per_listener_settings":        perListenerSettings,
	"persistence":                  globalBool(func(c *Config) *bool { return &c.Persistence.Enabled }),
	"retained_persistence":         globalBool(func(c *Config) *bool { return &c.Persistence.Enabled }),
	"persistence_file":             globalString(func(c *Config) *string { return &c.Persistence.File }),
	"persistence_location":         globalFile(func(c *Config) *File { return &c.Persistence.Location }),
	"persistent_client_expiration": persistentClientExpiration,
	"pid_file":                     globalFile(func(c *Config) *File { return &c.PIDFile }),
	"queue_qos0_messages":          globalBool(func(c *Config) *bool { return &c.QueueQoS0Messages }),
	"retain_available":             globalBool(func(c *Config) *bool { return &c.RetainAvailable }),
	"retry_interval":               obsolete("the retry_interval option is no longer available (Mosquitto 2.0 removed it): ignored"),
	"set_tcp_nodelay":              globalBool(func(c *Config) *bool { return &c.SetTCPNoDelay }),
	"store_clean_interval":         obsolete("store_clean_interval is no longer needed (Mosquitto 2.0 removed it): ignored"),
	"sys_interval":                 globalInt(0, 65535, func(c *Config, n int64) { c.SysInterval = time.Duration(n) * time.Second }),
	"upgrade_outgoing_qos":         globalBool(func(c *Config) *bool { return &c.UpgradeOutgoingQoS }),
	"user":                         user,
	"websockets_headers_size":      globalInt(0, 65535, func(c *Config, n int64) { c.WebsocketsHeadersSize = int(n) }),
	"websockets_log_level":         websocketsLogLevel,

	// mamori extensions, global.
	"metrics_listener":         metricsListener,
	"cert_expiry_warning_days": globalInt(0, 36500, func(c *Config, n int64) { c.CertExpiryWarningDays = int(n) }),
	"reason_strings":           globalBool(func(c *Config) *bool { return &c.ReasonStrings }),

	// Authentication: global, or per listener with per_listener_settings.
	"acl_file":                   securityFile(func(s *Security) *File { return &s.ACLFile }),
	"password_file":              securityFile(func(s *Security) *File { return &s.PasswordFile }),
	"psk_file":                   securityFile(func(s *Security) *File { return &s.PSKFile }),
	"allow_anonymous":            allowAnonymous,
	"allow_zero_length_clientid": securityBool(func(s *Security) *bool { return &s.AllowZeroLengthClientID }),
	"auto_id_prefix":             autoIDPrefix,
	"plugin":                     pluginLine,
	"auth_plugin":                pluginLine,
	"global_plugin":              pluginLine,

	// Listeners.
	"listener":                 listenerLine,
	"port":                     portLine,
	"bind_address":             bindAddress,
	"bind_interface":           listenerString(func(l *Listener) *string { return &l.BindInterface }),
	"http_dir":                 listenerFile(func(l *Listener) *File { return &l.HTTPDir }),
	"max_connections":          listenerInt(math.MinInt32, math.MaxInt32, func(l *Listener, n int64) { l.MaxConnections = int(max(n, -1)) }),
	"max_qos":                  listenerInt(0, 2, func(l *Listener, n int64) { l.MaxQoS = int(n) }),
	"maximum_qos":              listenerInt(0, 2, func(l *Listener, n int64) { l.MaxQoS = int(n) }),
	"max_topic_alias":          listenerInt(0, 65535, func(l *Listener, n int64) { l.MaxTopicAlias = int(n) }),
	"mount_point":              mountPoint,
	"protocol":                 protocol,
	"socket_domain":            socketDomain,
	"use_username_as_clientid": listenerBool(func(l *Listener) *bool { return &l.UseUsernameAsClientID }),

	// TLS, per listener.
	"cafile":                   listenerFile(func(l *Listener) *File { return &l.TLS.CAFile }),
	"capath":                   listenerFile(func(l *Listener) *File { return &l.TLS.CAPath }),
	"certfile":                 certFile,
	"keyfile":                  keyFile,
	"keyfile_password":         keyfilePassword,
	"crlfile":                  crlFile,
	"crl_url":                  crlURL,
	"crl_refresh_interval":     listenerInt(1, math.MaxInt32, func(l *Listener, n int64) { l.TLS.CRLRefreshInterval = time.Duration(n) * time.Second }),
	"ciphers":                  listenerValue(func(l *Listener) *Value { return &l.TLS.Ciphers }),
	"ciphers_tls1.3":           ciphersTLS13,
	"tls_version":              tlsVersion,
	"require_certificate":      listenerBool(func(l *Listener) *bool { return &l.TLS.RequireCertificate }),
	"use_identity_as_username": listenerBool(func(l *Listener) *bool { return &l.TLS.UseIdentityAsUsername }),
	"use_subject_as_username":  listenerBool(func(l *Listener) *bool { return &l.TLS.UseSubjectAsUsername }),
	"ocsp_stapling":            listenerBool(func(l *Listener) *bool { return &l.TLS.OCSPStapling }),
	"psk_hint":                 listenerString(func(l *Listener) *string { return &l.TLS.PSKHint }),
	"dhparamfile":              dhparamFile,
	"tls_engine":               tlsEngine,
	"tls_engine_kpass_sha1":    tlsEngineKpass,
	"tls_keyform":              tlsKeyform,
}

func globalBool(field func(*Config) *bool) handler {
	return func(p *parser, ln *Line) {
		if v, ok := p.boolean(ln); ok {
			*field(p.cfg) = v
		}
	}
}

func globalInt(lo, hi int64, set func(*Config, int64)) handler {
	return func(p *parser, ln *Line) {
		if n, ok := p.integer(ln, lo, hi); ok {
			set(p.cfg, n)
		}
	}
}

func globalString(field func(*Config) *string) handler {
	return func(p *parser, ln *Line) {
		if v, ok := p.str(ln, "a value"); ok && p.setOnce(p.cfg, ln) {
			*field(p.cfg) = v.Text
		}
	}
}

func globalFile(field func(*Config) *File) handler {
	return func(p *parser, ln *Line) {
		if v, ok := p.str(ln, "a path"); ok && p.setOnce(p.cfg, ln) {
			*field(p.cfg) = File{Path: v.Text, Pos: ln.Pos}
		}
	}
}

func listenerBool(field func(*Listener) *bool) handler {
	return func(p *parser, ln *Line) {
		l := p.listener(ln)
		if v, ok := p.boolean(ln); ok {
			*field(l) = v
		}
	}
}

func listenerInt(lo, hi int64, set func(*Listener, int64)) handler {
	return func(p *parser, ln *Line) {
		l := p.listener(ln)
		if n, ok := p.integer(ln, lo, hi); ok {
			set(l, n)
		}
	}
}

func listenerString(field func(*Listener) *string) handler {
	return func(p *parser, ln *Line) {
		l := p.listener(ln)
		if v, ok := p.str(ln, "a value"); ok && p.setOnce(l, ln) {
			*field(l) = v.Text
		}
	}
}

func listenerValue(field func(*Listener) *Value) handler {
	return func(p *parser, ln *Line) {
		l := p.listener(ln)
		if v, ok := p.str(ln, "a value"); ok && p.setOnce(l, ln) {
			*field(l) = Value{Text: v.Text, Pos: ln.Pos}
		}
	}
}

func listenerFile(field func(*Listener) *File) handler {
	return func(p *parser, ln *Line) {
		l := p.listener(ln)
		if v, ok := p.str(ln, "a path"); ok && p.setOnce(l, ln) {
			*field(l) = File{Path: v.Text, Pos: ln.Pos}
		}
	}
}

func securityBool(field func(*Security) *bool) handler {
	return func(p *parser, ln *Line) {
		s := p.security(ln)
		if v, ok := p.boolean(ln); ok {
			*field(s) = v
		}
	}
}

func securityFile(field func(*Security) *File) handler {
	return func(p *parser, ln *Line) {
		s := p.security(ln)
		if v, ok := p.str(ln, "a path"); ok && p.setOnce(s, ln) {
			*field(s) = File{Path: v.Text, Pos: ln.Pos}
		}
	}
}

func obsolete(msg string) handler {
	return func(p *parser, ln *Line) { p.warn(ln, "%s", msg) }
}

func allowAnonymous(p *parser, ln *Line) {
	s := p.security(ln)
	if v, ok := p.boolean(ln); ok {
		s.AllowAnonymous = &v
	}
}

func autoIDPrefix(p *parser, ln *Line) {
	s := p.security(ln)
	if v, ok := p.str(ln, "a prefix"); ok && p.setOnce(s, ln) {
		s.AutoIDPrefix = v.Text
	}
}

// perListenerSettings must come before any authentication option: those
// already read went to the global scope (or to listeners), and moving them
// silently would change who may connect.
func perListenerSettings(p *parser, ln *Line) {
	v, ok := p.boolean(ln)
	if !ok {
		return
	}
	if p.firstSecurity.IsValid() && v != p.cfg.PerListenerSettings {
		p.errorf(ln, "must be set before any authentication option (the first is at %s)", p.firstSecurity)
		return
	}
	p.cfg.PerListenerSettings = v
}

func enableControlAPI(p *parser, ln *Line) {
	v, ok := p.boolean(ln)
	if !ok {
		return
	}
	p.cfg.EnableControlAPI = v
	if v {
		p.warn(ln, "mamori does not provide Mosquitto's $CONTROL API: ignored")
	}
}

func user(p *parser, ln *Line) {
	// Mosquitto lets a later `user` replace an earlier one.
	if v, ok := p.str(ln, "a user name"); ok {
		p.cfg.User = v.Text
	}
}

func websocketsLogLevel(p *parser, ln *Line) {
	if n, ok := p.integer(ln, math.MinInt32, math.MaxInt32); ok {
		p.cfg.Log.WebsocketsLevel = int(n)
		p.warn(ln, "no effect: it sets libwebsockets' log level, and mamori does not use libwebsockets; `log_type websockets` logs mamori's WebSocket events")
	}
}

func memoryLimit(p *parser, ln *Line) {
	n, ok := p.integer(ln, 0, math.MaxInt64)
	if !ok {
		return
	}
	p.cfg.Limits.MemoryLimit = n
	if n > 0 {
		p.warn(ln, "applied as the Go runtime's soft memory limit: the garbage collector works harder near it, but allocations are not refused as in Mosquitto")
	}
}

// maxInflightMessages follows Mosquitto: negative values and 65535 mean
// no limit (0).
func maxInflightMessages(p *parser, ln *Line) {
	n, ok := p.integer(ln, math.MinInt32, 65535)
	if !ok {
		return
	}
	if n < 0 || n == 65535 {
		n = 0
	}
	p.cfg.Limits.MaxInflightMessages = int(n)
}

// maxPacketSize rejects 1..19 as Mosquitto does (no CONNECT fits), and
// accepts 0, the documented "no limit" that the example file shows.
func maxPacketSize(p *parser, ln *Line) {
	n, ok := p.integer(ln, 0, math.MaxUint32)
	if !ok {
		return
	}
	if n > 0 && n < 20 {
		p.errorf(ln, "value %q is too small: expected 0 (no limit) or at least 20 bytes", ln.Args[0].Text)
		return
	}
	p.cfg.Limits.MaxPacketSize = int(n)
}

// persistentClientExpiration reads Mosquitto's durations: a number and one
// of h, d, w, m (30 days) or y (365 days).
func persistentClientExpiration(p *parser, ln *Line) {
	const expect = "a number followed by h, d, w, m or y (hours, days, weeks, months, years), e.g. 14d"
	t, ok := p.arg(ln, expect)
	if !ok {
		return
	}
	units := map[byte]time.Duration{'h': time.Hour, 'd': 24 * time.Hour, 'w': 7 * 24 * time.Hour,
		'm': 30 * 24 * time.Hour, 'y': 365 * 24 * time.Hour}
	s := t.Text
	unit, ok := units[s[len(s)-1]]
	n, err := strconv.ParseInt(s[:len(s)-1], 10, 32)
	if !ok || err != nil || n <= 0 {
		p.errorf(ln, "value %q is not valid: expected %s", s, expect)
		return
	}
	p.cfg.PersistentClientExpiration = time.Duration(n) * unit
}

// logDest: the first log_dest replaces the default (stderr); later ones
// add destinations; "none" clears them.
func logDest(p *parser, ln *Line) {
	words := []string{"stdout", "stderr", "syslog", "topic", "file", "dlt", "none"}
	expect := strings.Join(words, ", ")
	if len(ln.Args) == 0 {
		p.errorf(ln, "missing value: expected one of %s", expect)
		return
	}
	c := p.cfg
	first := !p.logDestSet
	dest := c.Log.Dest
	if first {
		dest = 0
	}
	w := ln.Args[0].Text
	switch w {
	case "none":
		dest = 0
	case "file":
		path := strings.TrimLeft(ln.Rest.Text[len(w):], " \t")
		if path == "" {
			p.errorf(ln, "missing value: `log_dest file` needs the path of the log file")
			return
		}
		if c.Log.File.IsSet() {
			p.errorf(ln, "`log_dest file` given twice (first at %s); only one log file is possible", c.Log.File.Pos)
			return
		}
		c.Log.File = File{Path: path, Pos: ln.Pos}
		dest |= LogFile
	default:
		i := slices.Index(words, w)
		if i < 0 {
			p.errorf(ln, "value %q is not valid: expected one of %s", w, expect)
			return
		}
		if len(ln.Args) > 1 {
			p.warn(ln, "ignored extra text %q after the value (give one destination per log_dest line)",
				strings.TrimLeft(ln.Rest.Text[len(w):], " \t"))
		}
		dest |= logDestNames[i].bit
		if w == "dlt" {
			p.warn(ln, "mamori cannot log to DLT (Diagnostic Log and Trace): ignored")
		}
	}
	p.logDestSet = true
	c.Log.Dest = dest
}

// logType: the first log_type replaces the default set; later ones add.
func logType(p *parser, ln *Line) {
	var names []string
	for _, n := range logTypeNames {
		names = append(names, n.name)
	}
	names = append(names, "none", "all")
	w, ok := p.keyword(ln, names...)
	if !ok {
		return
	}
	types := p.cfg.Log.Types
	if !p.logTypeSet {
		types = 0
	}
	switch w {
	case "none":
		types = 0
	case "all":
		types = LogAll
	default:
		for _, n := range logTypeNames {
			if n.name == w {
				types |= n.bit
			}
		}
	}
	p.logTypeSet = true
	p.cfg.Log.Types = types
}

func metricsListener(p *parser, ln *Line) {
	t, ok := p.arg(ln, "ADDR:PORT, e.g. 127.0.0.1:9234")
	if !ok || !p.setOnce(p.cfg, ln) {
		return
	}
	_, port, err := net.SplitHostPort(t.Text)
	if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 1 || n > 65535 {
		p.errorf(ln, "value %q is not valid: expected ADDR:PORT with a port 1..65535, e.g. 127.0.0.1:9234", t.Text)
		return
	}
	p.cfg.MetricsListener = Value{Text: t.Text, Pos: ln.Pos}
}

func mountPoint(p *parser, ln *Line) {
	l := p.listener(ln)
	v, ok := p.str(ln, "a topic prefix")
	if !ok {
		return
	}
	if l == p.def && len(p.cfg.Listeners) == 0 {
		p.errorf(ln, "needs a `listener` line before it (Mosquitto refuses a mount_point for the default listener)")
		return
	}
	if strings.ContainsAny(v.Text, "+#") {
		p.errorf(ln, "value %q is not valid: a mount point is a topic prefix and cannot contain the wildcards + or #", v.Text)
		return
	}
	if p.setOnce(l, ln) {
		l.MountPoint = v.Text
	}
}

func protocol(p *parser, ln *Line) {
	l := p.listener(ln)
	if w, ok := p.keyword(ln, "mqtt", "websockets"); ok {
		l.Protocol = Protocol(w)
	}
}

func socketDomain(p *parser, ln *Line) {
	l := p.listener(ln)
	if w, ok := p.keyword(ln, "ipv4", "ipv6"); ok {
		l.SocketDomain = SocketDomain(w)
	}
}

func tlsVersion(p *parser, ln *Line) {
	l := p.listener(ln)
	if w, ok := p.keyword(ln, "tlsv1.3", "tlsv1.2", "tlsv1.1"); ok && p.setOnce(l, ln) {
		l.TLS.Version = Value{Text: w, Pos: ln.Pos}
	}
}

// goTLS13Suites are the TLS 1.3 suites Go's crypto/tls offers; it cannot
// restrict them, and it has no CCM suites.
var goTLS13Suites = []string{"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}

func ciphersTLS13(p *parser, ln *Line) {
	l := p.listener(ln)
	v, ok := p.str(ln, "a colon-separated list of TLS 1.3 cipher suites")
	if !ok || !p.setOnce(l, ln) {
		return
	}
	known := append(slices.Clone(goTLS13Suites), "TLS_AES_128_CCM_SHA256", "TLS_AES_128_CCM_8_SHA256")
	names := strings.Split(v.Text, ":")
	for _, n := range names {
		if !slices.Contains(known, n) {
			p.errorf(ln, "unknown TLS 1.3 cipher suite %q: expected names from %s", n, strings.Join(known, ":"))
			return
		}
	}
	l.TLS.Ciphers13 = Value{Text: v.Text, Pos: ln.Pos}
	for _, s := range goTLS13Suites {
		if !slices.Contains(names, s) {
			p.warn(ln, "not applied: Go's crypto/tls always offers %s in TLS 1.3 and cannot restrict them", strings.Join(goTLS13Suites, ", "))
			return
		}
	}
	if len(names) > len(goTLS13Suites) {
		p.warn(ln, "the CCM suites are not available in Go's crypto/tls: only %s are offered", strings.Join(goTLS13Suites, ", "))
	}
}

func dhparamFile(p *parser, ln *Line) {
	l := p.listener(ln)
	if v, ok := p.str(ln, "a path"); ok && p.setOnce(l, ln) {
		l.TLS.DHParamFile = File{Path: v.Text, Pos: ln.Pos}
		p.warn(ln, "ignored: Go's crypto/tls has no finite-field DHE key exchange; forward secrecy comes from ECDHE, which needs no parameters")
	}
}

func tlsEngine(p *parser, ln *Line) {
	l := p.listener(ln)
	if v, ok := p.str(ln, "an OpenSSL engine id"); ok && p.setOnce(l, ln) {
		l.TLS.Engine = v.Text
		p.warn(ln, "ignored: OpenSSL engines are not available in Go; keyfile is read as a key file")
	}
}

func tlsEngineKpass(p *parser, ln *Line) {
	l := p.listener(ln)
	if _, ok := p.str(ln, "a SHA-1 hex string"); ok && p.setOnce(l, ln) {
		p.warn(ln, "ignored: OpenSSL engines are not available in Go")
	}
}

func tlsKeyform(p *parser, ln *Line) {
	l := p.listener(ln)
	w, ok := p.keyword(ln, "pem", "engine")
	if !ok || !p.setOnce(l, ln) {
		return
	}
	l.TLS.Keyform = w
	if w == "engine" {
		p.warn(ln, "OpenSSL engines are not available in Go: keyfile is read as a PEM (or DER) key file")
	}
}

// pluginLine refuses Mosquitto plugins: they are C shared objects mamori
// cannot load, and starting without an authentication or ACL plugin would
// silently let in clients it was meant to keep out.
func pluginLine(p *parser, ln *Line) {
	if p.cfg.PerListenerSettings && ln.Name != "global_plugin" {
		p.security(ln)
	}
	p.plugin = true
	v, _ := p.str(ln, "the path of a plugin")
	msg := "mamori cannot load Mosquitto plugins (C shared objects), and starting without this one could let in clients it is meant to refuse; remove it and use password_file/acl_file instead"
	if strings.Contains(v.Text, "dynamic_security") {
		msg = "mamori cannot load the Dynamic Security plugin; remove it and use password_file/acl_file instead (its users and ACLs can be exported to them)"
	}
	p.errorf(ln, "%s", msg)
}

// pluginOption accepts plugin_opt_*/auth_opt_* lines after a plugin line
// (the plugin itself is already an error) and refuses them without one, as
// Mosquitto does.
func (p *parser) pluginOption(ln *Line) {
	if !p.plugin {
		p.errorf(ln, "there is no `plugin` line before this plugin option")
	}
}

// suggest returns the known option closest to name, if it is close enough
// to be a typo.
func suggest(name string) string {
	best, bestD := "", 3
	if len(name) < 4 || len(name) > 64 {
		return ""
	}
	for k := range options {
		if d := editDistance(name, k); d < bestD || (d == bestD && k < best) {
			best, bestD = k, d
		}
	}
	if bestD > 2 {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
