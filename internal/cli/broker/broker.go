// Package broker implements "mamori broker", the MQTT broker command, with
// the flags of mosquitto: -c FILE, -p PORT, -v, -d.
package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/mamori-mqtt/mamori/internal/auth"
	"github.com/mamori-mqtt/mamori/internal/bridge"
	"github.com/mamori-mqtt/mamori/internal/broker"
	"github.com/mamori-mqtt/mamori/internal/config"
	"github.com/mamori-mqtt/mamori/internal/listener"
	"github.com/mamori-mqtt/mamori/internal/metrics"
	"github.com/mamori-mqtt/mamori/internal/tlsconf"
)

// Version is reported in $SYS/broker/version; the top-level command sets it.
var Version = "dev"

const usageText = `mamori broker — an MQTT 3.1/3.1.1/5.0 broker, a drop-in for mosquitto

Usage: mamori broker [-c config_file] [-d] [-p port] [-v]

  -c, --config-file FILE  read the configuration from FILE (mosquitto.conf syntax)
  -d, --daemon            run in the background
      --tls-keylog FILE   append the TLS-PSK listeners' secrets to FILE in the
                          NSS key log format, to decrypt captures in
                          Wireshark (debugging only: anyone with FILE can
                          read the traffic)
  -p, --port PORT         listen on PORT (may be repeated); overrides the
                          default listener's port
  -v, --verbose           log everything (log_type all)
      --help              show this help

Without -c, mamori listens on 127.0.0.1:1883 (plain MQTT, anonymous allowed)
and on 127.0.0.1:8883 with TLS, using a local CA it creates on first start.

Signals: SIGHUP re-reads the configuration and applies the password, ACL and
PSK files and the log settings (other changes are logged as needing a
restart); SIGTERM or SIGINT disconnect every client and stop.
`

// Run executes the broker command.
func Run(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("broker", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfgFile := fs.StringP("config-file", "c", "", "")
	daemon := fs.BoolP("daemon", "d", false, "")
	ports := fs.IntSliceP("port", "p", nil, "")
	verbose := fs.BoolP("verbose", "v", false, "")
	keyLog := fs.String("tls-keylog", "", "")
	help := fs.Bool("help", false, "")
	if err := fs.Parse(args); err != nil {
		fmt.Fprintf(stderr, "Error: %v\n\n%s", err, usageText)
		return 1
	}
	if *help {
		fmt.Fprint(stdout, usageText)
		return 0
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "Error: unknown argument %q\n\n%s", fs.Arg(0), usageText)
		return 1
	}
	// A daemonized child reports its start through a pipe to the parent,
	// which still has the terminal.
	status := daemonChild()
	if status != nil {
		stderr = status
	}

	var cfg *config.Config
	if *cfgFile != "" {
		c, err := config.Load(*cfgFile)
		if err != nil {
			fmt.Fprintf(stderr, "Error: %v\n", err)
			return 3
		}
		cfg = c
	} else {
		cfg = config.Default()
	}
	if len(*ports) > 0 {
		applyPorts(cfg, *ports)
	}
	if *daemon && status == nil {
		return daemonize(args, stderr)
	}
	s := &server{cfgPath: *cfgFile, ports: *ports, verbose: *verbose, cfg: cfg, stdout: stdout, stderr: stderr,
		ver: auth.NewVerifier(auth.DefaultVerifierEntries), thr: auth.NewThrottle()}
	if *keyLog != "" {
		kl, err := newKeyLogFile(*keyLog)
		if err != nil {
			fmt.Fprintf(stderr, "Error: --tls-keylog: %v\n", err)
			return 1
		}
		s.keyLog = kl
	}
	return s.run(status)
}

// applyPorts mirrors mosquitto's -p: the default listener moves to the
// port given; more -p flags add listeners. -p means exactly those ports:
// the built-in TLS listener of the no-argument start is dropped, so two
// brokers started with different -p ports do not both claim 8883.
func applyPorts(cfg *config.Config, ports []int) {
	var def []*config.Listener
	kept := cfg.Listeners[:0]
	for _, l := range cfg.Listeners {
		if l.AutoCert {
			continue
		}
		kept = append(kept, l)
		if l.Default {
			def = append(def, l)
		}
	}
	cfg.Listeners = kept
	var base *config.Listener
	if len(def) > 0 {
		base = def[0]
	}
	for i, p := range ports {
		if i == 0 && base != nil {
			base.Port = p
			continue
		}
		nl := *cfg.Listeners[0]
		nl.Port = p
		nl.TLS = config.TLSOptions{}
		nl.AutoCert = false
		cfg.Listeners = append(cfg.Listeners, &nl)
	}
}

// server is one running broker process: its configuration (as applied, see
// effectiveConfig), its listeners, its log outputs and what SIGHUP needs
// to rebuild the authentication.
type server struct {
	cfgPath string
	ports   []int
	verbose bool
	cfg     *config.Config
	keyLog  *keyLogFile // --tls-keylog, or nil

	stdout, stderr io.Writer
	sink           *logSink
	log            *slog.Logger

	ver *auth.Verifier
	thr *auth.Throttle

	b         *broker.Broker
	listeners []*running // one per cfg.Listeners entry, same order
	serving   sync.WaitGroup
	bridges   []*bridge.Bridge
}

// running is one configured listener and what serves it.
type running struct {
	cfg *config.Listener
	bl  *broker.Listener
	lns []net.Listener
	ws  *listener.WebSocket // nil unless protocol websockets
	tls *tlsconf.Server     // nil unless the listener speaks TLS with certificates
	psk *tlsconf.PSKServer  // nil unless the listener speaks TLS-PSK (psk_hint)
}

func (s *server) run(status *daemonStatus) int {
	// MAMORI_CPUPROFILE=FILE writes a CPU profile of the whole run, for
	// `go tool pprof` (performance work; see bench/RESULTS.md).
	if path := os.Getenv("MAMORI_CPUPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil {
			if pprof.StartCPUProfile(f) == nil {
				defer func() {
					pprof.StopCPUProfile()
					f.Close()
				}()
			}
		}
	}
	if os.Getenv("MAMORI_MEMPROFILE") != "" {
		// Fine sampling: a connection's few hundred bytes must show up.
		runtime.MemProfileRate = 256
	}
	// Signals are caught from the start: a SIGHUP sent by a script right
	// after the broker starts must not kill it (the default action), and a
	// SIGTERM during start-up is acted on once the broker runs.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	out, warns, err := openLogOutput(s.cfg.Log, s.verbose, s.stdout, s.stderr)
	if err != nil {
		fmt.Fprintf(s.stderr, "Error: %v\n", err)
		return 1
	}
	s.sink = newLogSink(out)
	defer s.sink.close()
	s.log = slog.New(&lineHandler{sink: s.sink})
	log := s.log
	log.Info(fmt.Sprintf("mamori version %s starting", Version))
	if s.cfgPath != "" {
		log.Info(fmt.Sprintf("Config loaded from %s.", s.cfgPath), logTypeKey, "information")
	} else {
		// Not Mosquitto's exact words: scripts (and our tests) wait for " running".
		log.Info("Starting in local only mode: only clients on this machine can connect.")
	}
	for _, w := range warns {
		log.Warn(w)
	}
	for _, w := range s.cfg.Warnings {
		log.Warn(w.String())
	}

	auths, err := s.buildAuth(s.cfg)
	if err != nil {
		log.Error(fmt.Sprintf("Error: %v", err))
		return 3
	}
	du, warning, err := lookupDropUser(s.cfg.User, s.cfg.User == config.DefaultUser)
	if err != nil {
		log.Error("Error: " + err.Error())
		return 1
	}
	opts := brokerOptions(s.cfg, log)
	b, err := broker.New(opts)
	if err != nil {
		log.Error("cannot start broker", "err", err)
		return 1
	}
	s.b = b
	b.SetAuth(auths.global)
	if err := s.openListeners(auths); err != nil {
		log.Error("Error: " + err.Error())
		for _, r := range s.listeners {
			r.close(nil)
		}
		b.Close()
		return 1
	}
	if du != nil {
		// Everything the broker reads again later (SIGHUP, a changed
		// certificate or CRL) it reads as that user: a file only root can
		// read would fail then, and revocation or a removed password would
		// silently stop applying. Refuse now, naming the file; after the
		// listeners loaded, so that a broken file is reported as such.
		if err := s.checkRereadable(du, out); err != nil {
			log.Error("Error: " + err.Error())
			s.closeAll()
			return 3
		}
	}
	if s.cfg.Persistence.Enabled {
		log.Warn("persistence: mamori does not save its state to disk yet; retained messages and persistent sessions are kept in memory and lost on restart")
	}
	// Bridges are built (their TLS files read) before anything is served,
	// so a broken bridge stops the start like any other configuration error.
	for _, bc := range s.cfg.Bridges {
		br, err := bridge.New(bridgeOptions(s.cfg, bc, b, log))
		if err != nil {
			log.Error("Error: " + err.Error())
			s.closeAll()
			return 1
		}
		s.bridges = append(s.bridges, br)
	}
	var reg *metrics.Registry
	if s.cfg.MetricsListener.IsSet() {
		reg = metrics.New(b)
		for _, br := range s.bridges {
			reg.AddBridge(br.Name(), br.Stats())
		}
		for _, r := range s.listeners {
			if r.tls != nil {
				reg.AddTLS(r.bl.Name, r.tls)
			}
			if r.psk != nil {
				reg.AddTLSPSK(r.bl.Name, r.psk.Stats())
			}
		}
		stopMetrics, err := serveMetrics(s.cfg.MetricsListener.Text, reg, log)
		if err != nil {
			log.Error(fmt.Sprintf("Error: metrics_listener %s (%s): %v", s.cfg.MetricsListener.Text, s.cfg.MetricsListener.Pos, err))
			s.closeAll()
			return 1
		}
		defer stopMetrics()
	}
	if s.cfg.PIDFile.IsSet() {
		if err := writePIDFile(s.cfg.PIDFile.Path); err != nil {
			log.Error(fmt.Sprintf("Error: cannot write pid_file %s: %v", s.cfg.PIDFile.Path, err))
			s.closeAll()
			return 1
		}
		defer func() {
			if err := os.Remove(s.cfg.PIDFile.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				log.Warn(fmt.Sprintf("Warning: cannot remove pid_file %s at exit (%v): its directory must be writable by the user the broker runs as", s.cfg.PIDFile.Path, err))
			}
		}()
	}
	if err := du.drop(); err != nil {
		log.Error("Error: " + err.Error())
		s.closeAll()
		return 1
	}
	if warning != "" {
		log.Warn(warning)
	}
	if du != nil {
		s.warnUnremovable(du)
	}

	pubCtx, stopPub := context.WithCancel(context.Background())
	defer stopPub()
	waitPub := s.sink.publishTo(pubCtx, b.Publish)
	s.serve()
	stopWatch := watchPSKFiles(pskFiles(s.cfg), sigs, log)
	defer stopWatch()
	// Bridges start once the listeners accept clients, as in Mosquitto.
	for _, br := range s.bridges {
		if err := br.Start(); err != nil {
			log.Error("Error: " + err.Error())
		}
	}
	log.Info(fmt.Sprintf("mamori version %s running", Version))
	if reg != nil {
		reg.SetReady(true)
	}
	if status != nil {
		status.ready()
	}

	for sig := range sigs {
		if sig == syscall.SIGHUP {
			s.reload()
			continue
		}
		log.Info("mamori version " + Version + " terminating")
		writeHeapProfile()
		if reg != nil {
			reg.SetReady(false)
		}
		stopPub()
		waitPub()
		s.closeAll()
		return 0
	}
	return 0
}

// writeHeapProfile writes the live heap to MAMORI_MEMPROFILE, when set,
// while every client is still connected: it shows what a connection costs
// (performance work; see bench/RESULTS.md).
func writeHeapProfile() {
	path := os.Getenv("MAMORI_MEMPROFILE")
	if path == "" {
		return
	}
	f, err := os.Create(path)
	if err != nil {
		return
	}
	defer f.Close()
	runtime.GC()
	_ = pprof.WriteHeapProfile(f)
}

// openListeners binds every configured listener. Nothing is served yet, so
// a failure closes what was opened and the broker exits without having
// accepted a client.
func (s *server) openListeners(auths authSet) error {
	for i, l := range s.cfg.Listeners {
		r := &running{cfg: l, bl: newBrokerListener(l)}
		if s.cfg.PerListenerSettings {
			sec := s.cfg.SecurityFor(l)
			allow, prefix := sec.AllowZeroLengthClientID, sec.AutoIDPrefix
			r.bl.AllowZeroLengthClientID, r.bl.AutoIDPrefix = &allow, &prefix
		}
		r.bl.SetAuth(auths.listener(i))
		s.listeners = append(s.listeners, r)
		lns, err := listener.Open(l)
		if err != nil && l.AutoCert && errors.Is(err, syscall.EADDRINUSE) {
			// The built-in TLS listener is a convenience of the
			// no-argument start: another broker on 8883 must not stop
			// this one from serving plain MQTT on 1883.
			s.log.Warn(fmt.Sprintf("Warning: not serving TLS on %s: %v", l.Addr(), err))
			continue
		}
		if err != nil {
			return fmt.Errorf("cannot listen on %s (%s): %w", l.Addr(), l, err)
		}
		r.lns = lns
		var tc *tls.Config
		if l.TLS.PSKHint != "" && !l.AutoCert {
			// TLS-PSK: served by package tlspsk, not crypto/tls.
			if l.Protocol == config.ProtocolWebSockets {
				return fmt.Errorf("%s: psk_hint: %s is a WebSocket listener; TLS-PSK is available on MQTT listeners only", l.Pos, l)
			}
			o := tlsconf.PSKOptions{Listener: l, Keys: auths.pskFile(i), Log: s.log}
			if s.keyLog != nil {
				o.KeyLogWriter = s.keyLog
				s.log.Warn(fmt.Sprintf("%s: --tls-keylog: the TLS secrets of every connection are written to %s (debugging only)", l, s.keyLog.path))
			}
			srv, err := tlsconf.NewPSK(o)
			if err != nil {
				return fmt.Errorf("%s: %w", l, err)
			}
			r.psk = srv
			r.bl.Identity = srv.Identity()
			for j, ln := range r.lns {
				r.lns[j] = srv.NewListener(ln)
			}
		} else if l.AutoCert || l.TLS.Enabled() {
			srv, info, err := setupTLS(context.Background(), l, s.cfg, s.b, r.bl, s.log)
			if err != nil {
				return fmt.Errorf("%s: %w", l, err)
			}
			r.tls = srv
			tc = srv.Config()
			if info != "" {
				fmt.Fprint(s.stdout, info)
			}
		}
		if l.Protocol == config.ProtocolWebSockets {
			bl := r.bl
			r.ws = &listener.WebSocket{
				Serve:          func(nc net.Conn) { s.b.ServeConn(nc, bl) },
				MaxConnections: l.MaxConnections,
				HTTPDir:        l.HTTPDir.Path,
				MaxHeaderBytes: s.cfg.WebsocketsHeadersSize,
				TLS:            tc,
				Log:            s.log,
			}
			if r.tls != nil {
				r.ws.WrapTLS = r.tls.NewListener
			}
		} else if tc != nil {
			for j, ln := range r.lns {
				// Handshakes complete (and failures are logged with their
				// reason) before Accept hands the connection to the broker.
				r.lns[j] = r.tls.NewListener(ln)
			}
		}
		for _, ln := range r.lns {
			s.log.Info(fmt.Sprintf("Opening %s listen socket on %s.", netName(l, ln.Addr()), ln.Addr()))
		}
	}
	return nil
}

// newBrokerListener carries a listener's options to the broker core.
func newBrokerListener(l *config.Listener) *broker.Listener {
	bl := &broker.Listener{Name: listenerName(l), MountPoint: l.MountPoint,
		UseUsernameAsClientID: l.UseUsernameAsClientID}
	if l.Protocol != config.ProtocolWebSockets {
		// The WebSocket listener counts its own connections.
		bl.MaxConnections = l.MaxConnections
	}
	q, ta := byte(l.MaxQoS), uint16(l.MaxTopicAlias)
	bl.MaxQoS, bl.MaxTopicAlias = &q, &ta
	return bl
}

// serve starts a goroutine per socket; closeAll stops and waits for them.
func (s *server) serve() {
	for _, r := range s.listeners {
		for _, ln := range r.lns {
			s.serving.Add(1)
			go func() {
				defer s.serving.Done()
				var err error
				if r.ws != nil {
					err = r.ws.ServeListener(ln)
				} else {
					err = s.b.Serve(ln, r.bl)
				}
				if err != nil {
					s.log.Error("listener stopped", "listener", r.bl.Name, "err", err)
				}
			}()
		}
	}
}

// closeAll stops accepting, disconnects every client (MQTT 5 clients get
// DISCONNECT 0x8B, server shutting down) and waits for all goroutines.
func (s *server) closeAll() {
	for _, br := range s.bridges {
		br.Close()
	}
	for _, r := range s.listeners {
		if r.ws != nil {
			r.ws.Close()
		}
	}
	s.b.Close()
	for _, r := range s.listeners {
		r.close(s.log)
		if r.ws != nil {
			r.ws.Wait()
		}
	}
	s.serving.Wait()
}

// close closes the listener's sockets (Serve may have done so already).
// Closing a unix socket listener removes its file; when that fails — the
// broker dropped its privileges and may not write the socket's directory
// any more — it is said, since the file stays behind (the next start
// removes it).
func (r *running) close(log *slog.Logger) {
	for _, ln := range r.lns {
		ln.Close()
	}
	if r.tls != nil {
		r.tls.Close()
	}
	if p := r.cfg.UnixPath; p != "" && log != nil {
		if fi, err := os.Lstat(p); err == nil && fi.Mode()&fs.ModeSocket != 0 {
			if err := os.Remove(p); err != nil {
				log.Warn(fmt.Sprintf("Warning: cannot remove the unix socket %s at exit (%v); the next start removes it. Give the broker's user write access to %s, or set `user root`", p, err, filepath.Dir(p)))
			}
		}
	}
	if r.psk != nil {
		r.psk.Close()
	}
}

// warnUnremovable says at start, once the broker runs as du, which unix
// socket files it will not be able to remove at exit: removing a file
// needs write and search permission on its directory and, in a sticky
// directory such as /tmp, ownership of the file or the directory.
func (s *server) warnUnremovable(du *dropUser) {
	for _, r := range s.listeners {
		p := r.cfg.UnixPath
		if p == "" {
			continue
		}
		dir := filepath.Dir(p)
		why := ""
		if err := syscall.Access(dir, 2|1); err != nil { // W_OK|X_OK, as the user the process now is
			why = fmt.Sprintf("%s is not writable by %q", dir, du.name)
		} else if fi, err := os.Stat(dir); err == nil && fi.Mode()&fs.ModeSticky != 0 {
			dst, dok := fi.Sys().(*syscall.Stat_t)
			sfi, err := os.Lstat(p)
			if err == nil && dok {
				if sst, ok := sfi.Sys().(*syscall.Stat_t); ok && int(sst.Uid) != du.uid && int(dst.Uid) != du.uid {
					why = fmt.Sprintf("%s is sticky and the socket belongs to uid %d", dir, sst.Uid)
				}
			}
		}
		if why != "" {
			s.log.Warn(fmt.Sprintf("Warning: unix socket %s: the broker runs as %q and will not be able to remove it at exit (%s); the next start removes it", p, du.name, why))
		}
	}
}

// authSet is the authentication in force: the broker-wide Auth and, with
// per_listener_settings, one per listener (index-aligned with the running
// listeners; nil entries use the broker-wide one).
type authSet struct {
	global      *fileAuth
	perListener []*fileAuth
}

// listener is listener i's own Auth, or nil (a nil interface, not a nil
// *fileAuth) when it uses the broker-wide one.
func (a authSet) listener(i int) broker.Auth {
	if a.perListener[i] == nil {
		return nil
	}
	return a.perListener[i]
}

// pskFile is the psk_file that applies to listener i, or nil.
func (a authSet) pskFile(i int) *auth.PSKFile {
	fa := a.global
	if a.perListener[i] != nil {
		fa = a.perListener[i]
	}
	if fa == nil {
		return nil
	}
	return fa.psk
}

// buildAuth loads the password, ACL and PSK files cfg names. Nothing is
// applied: a start or reload uses the result only when every file loaded.
func (s *server) buildAuth(cfg *config.Config) (authSet, error) {
	set := authSet{perListener: make([]*fileAuth, len(cfg.Listeners))}
	if !cfg.PerListenerSettings {
		a, err := newFileAuth(cfg.SecurityFor(nil), cfg.AnonymousAllowed(nil), cfg.ClientIDPrefixes, s.ver, s.thr)
		if err != nil {
			return authSet{}, err
		}
		a.pskIdentity = pskIdentityListeners(cfg, nil)
		set.global = a
		s.logSkipped(a)
		return set, nil
	}
	// With per_listener_settings every listener has its own; the broker-
	// wide one refuses everybody, so a connection that somehow lacked a
	// listener Auth could not slip through.
	set.global = &fileAuth{ver: s.ver, thr: s.thr}
	for i, l := range cfg.Listeners {
		a, err := newFileAuth(cfg.SecurityFor(l), cfg.AnonymousAllowed(l), cfg.ClientIDPrefixes, s.ver, s.thr)
		if err != nil {
			return authSet{}, fmt.Errorf("%s: %w", l, err)
		}
		a.pskIdentity = pskIdentityListeners(cfg, l)
		set.perListener[i] = a
		s.logSkipped(a)
	}
	return set, nil
}

// logSkipped reports the password file lines that could not be used.
func (s *server) logSkipped(a *fileAuth) {
	if a.pw == nil || s.log == nil {
		return
	}
	for _, err := range a.pw.Skipped() {
		s.log.Warn(fmt.Sprintf("Warning: password_file %v; this user cannot log in", err))
	}
}

// pskIdentityListeners names the listeners (just `only`, when not nil)
// whose user name is the TLS-PSK identity.
func pskIdentityListeners(cfg *config.Config, only *config.Listener) map[string]bool {
	m := map[string]bool{}
	for _, l := range cfg.Listeners {
		if (only == nil || l == only) && l.TLS.PSKHint != "" && l.TLS.UseIdentityAsUsername {
			m[listenerName(l)] = true
		}
	}
	return m
}

// netName is the socket kind in Mosquitto's "Opening ipv4 listen socket"
// line.
func netName(l *config.Listener, a net.Addr) string {
	if l.Protocol == config.ProtocolWebSockets {
		return "websockets"
	}
	if l.UnixPath != "" {
		return "unix"
	}
	if ta, ok := a.(*net.TCPAddr); ok && !ta.IP.IsUnspecified() {
		if ta.IP.To4() != nil {
			return "ipv4"
		}
		return "ipv6"
	}
	switch l.Network() {
	case "tcp6":
		return "ipv6"
	case "tcp4":
		return "ipv4"
	}
	return "ipv4/ipv6"
}

func listenerName(l *config.Listener) string {
	if l.UnixPath != "" {
		return l.UnixPath
	}
	return strconv.Itoa(l.Port)
}

// bridgeOptions are one bridge's settings; its queue limits are the
// broker's (Mosquitto queues a bridge's messages like a client's).
func bridgeOptions(cfg *config.Config, bc *config.Bridge, b *broker.Broker, log *slog.Logger) bridge.Options {
	return bridge.Options{
		Config:         bc,
		Broker:         b,
		Logger:         log,
		MaxInflight:    cfg.Limits.MaxInflightMessages,
		MaxQueued:      cfg.Limits.MaxQueuedMessages,
		MaxQueuedBytes: int(cfg.Limits.MaxQueuedBytes),
		QueueQoS0:      cfg.QueueQoS0Messages,
	}
}

func brokerOptions(cfg *config.Config, log *slog.Logger) broker.Options {
	o := broker.DefaultOptions()
	o.Logger = log
	o.Version = Version
	lim := cfg.Limits
	o.MaxPacketSize = lim.MaxPacketSize
	o.MessageSizeLimit = lim.MessageSizeLimit
	o.MaxInflightMessages = lim.MaxInflightMessages
	if o.MaxInflightMessages == 0 {
		o.MaxInflightMessages = 65535
	}
	o.MaxQueuedMessages = lim.MaxQueuedMessages
	o.MaxQueuedBytes = int(lim.MaxQueuedBytes)
	if lim.MaxKeepalive > 0 && lim.MaxKeepalive < 65535 {
		o.MaxKeepAlive = uint16(lim.MaxKeepalive)
	}
	sec := cfg.SecurityFor(nil)
	o.AllowZeroLengthClientID = sec.AllowZeroLengthClientID
	o.AutoIDPrefix = sec.AutoIDPrefix
	o.AllowAnonymous = cfg.AnonymousAllowed(nil)
	o.RetainAvailable = cfg.RetainAvailable
	o.PersistentClientExpiration = cfg.PersistentClientExpiration
	o.QueueQoS0Messages = cfg.QueueQoS0Messages
	o.SysInterval = cfg.SysInterval
	o.ConnectionMessages = cfg.Log.ConnectionMessages
	o.ReasonStrings = cfg.ReasonStrings
	o.CheckRetainSource = cfg.CheckRetainSource
	o.UpgradeOutgoingQoS = cfg.UpgradeOutgoingQoS
	// max_qos and max_topic_alias are listener options; each
	// broker.Listener carries its own (newBrokerListener).
	return o
}
