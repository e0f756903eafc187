// Package broker implements "mamori broker", the MQTT broker command, with
// the flags of mosquitto: -c FILE, -p PORT, -v, -d.
package broker

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/mamori-mqtt/mamori/internal/auth"
	"github.com/mamori-mqtt/mamori/internal/broker"
	"github.com/mamori-mqtt/mamori/internal/config"
)

// Version is reported in $SYS/broker/version; the top-level command sets it.
var Version = "dev"

const usageText = `mamori broker — an MQTT 3.1/3.1.1/5.0 broker, a drop-in for mosquitto

Usage: mamori broker [-c config_file] [-d] [-p port] [-v]

  -c, --config-file FILE  read the configuration from FILE (mosquitto.conf syntax)
  -d, --daemon            run in the background
  -p, --port PORT         listen on PORT (may be repeated); overrides the
                          default listener's port
  -v, --verbose           log everything (log_type all)
      --help              show this help

Without -c, mamori listens on 127.0.0.1:1883 (plain MQTT, anonymous allowed)
and on 127.0.0.1:8883 with TLS, using a local CA it creates on first start.
`

// Run executes the broker command.
func Run(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("broker", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfgFile := fs.StringP("config-file", "c", "", "")
	daemon := fs.BoolP("daemon", "d", false, "")
	ports := fs.IntSliceP("port", "p", nil, "")
	verbose := fs.BoolP("verbose", "v", false, "")
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
	if *daemon {
		return daemonize(args, stderr)
	}

	log := newLogger(stderr, cfg, *verbose)
	for _, w := range cfg.Warnings {
		log.Warn(w.String())
	}
	return run(cfg, log, stdout)
}

// applyPorts mirrors mosquitto's -p: the default listener moves to the
// port given; more -p flags add listeners.
func applyPorts(cfg *config.Config, ports []int) {
	var def []*config.Listener
	for _, l := range cfg.Listeners {
		if l.Default && !l.AutoCert {
			def = append(def, l)
		}
	}
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

func daemonize(args []string, stderr io.Writer) int {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "Error: cannot daemonize: %v\n", err)
		return 1
	}
	var rest []string
	for _, a := range args {
		if a != "-d" && a != "--daemon" {
			rest = append(rest, a)
		}
	}
	cmd := exec.Command(exe, append([]string{"broker"}, rest...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		fmt.Fprintf(stderr, "Error: cannot daemonize: %v\n", err)
		return 1
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, devnull, devnull
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(stderr, "Error: cannot daemonize: %v\n", err)
		return 1
	}
	return 0
}

func run(cfg *config.Config, log *slog.Logger, stdout io.Writer) int {
	opts := brokerOptions(cfg, log)
	ver, thr := auth.NewVerifier(auth.DefaultVerifierEntries), auth.NewThrottle()
	if !cfg.PerListenerSettings {
		a, err := newFileAuth(cfg.SecurityFor(nil), cfg.AnonymousAllowed(nil), ver, thr)
		if err != nil {
			log.Error(fmt.Sprintf("Error: %v", err))
			return 3
		}
		opts.Auth = a
	}
	b, err := broker.New(opts)
	if err != nil {
		log.Error("cannot start broker", "err", err)
		return 1
	}
	type bound struct {
		ln net.Listener
		l  *broker.Listener
	}
	var lns []bound
	fail := func(format string, a ...any) int {
		log.Error(fmt.Sprintf(format, a...))
		for _, x := range lns {
			x.ln.Close()
		}
		b.Close()
		return 1
	}
	for _, l := range cfg.Listeners {
		if l.Protocol == config.ProtocolWebSockets {
			return fail("%s: WebSocket listeners are not supported yet", l)
		}
		ln, err := net.Listen(l.Network(), l.Addr())
		if err != nil {
			return fail("Error: cannot listen on %s (%s): %v", l.Addr(), l, err)
		}
		bl := &broker.Listener{Name: listenerName(l), MountPoint: l.MountPoint,
			UseUsernameAsClientID: l.UseUsernameAsClientID, MaxConnections: l.MaxConnections}
		if cfg.PerListenerSettings {
			a, err := newFileAuth(cfg.SecurityFor(l), cfg.AnonymousAllowed(l), ver, thr)
			if err != nil {
				ln.Close()
				return fail("Error: %s: %v", l, err)
			}
			bl.Auth = a
		}
		if l.AutoCert || l.TLS.Enabled() {
			tc, info, err := tlsConfig(l)
			if err != nil {
				ln.Close()
				return fail("%s: %v", l, err)
			}
			ln = tls.NewListener(ln, tc)
			if info != "" {
				fmt.Fprint(stdout, info)
			}
		}
		lns = append(lns, bound{ln, bl})
		log.Info(fmt.Sprintf("Opening %s listen socket on %s.", netName(l), ln.Addr()))
	}
	if cfg.PIDFile.IsSet() {
		if err := os.WriteFile(cfg.PIDFile.Path, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			return fail("Error: cannot write pid_file %s: %v", cfg.PIDFile.Path, err)
		}
		defer os.Remove(cfg.PIDFile.Path)
	}
	log.Info(fmt.Sprintf("mamori version %s running", Version))

	done := make(chan struct{}, len(lns))
	for _, x := range lns {
		go func() {
			if err := b.Serve(x.ln, x.l); err != nil {
				log.Error("listener stopped", "listener", x.l.Name, "err", err)
			}
			done <- struct{}{}
		}()
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			log.Info("mamori version " + Version + " terminating")
			b.Close()
			for range lns {
				<-done
			}
			return 0
		case <-hup:
			log.Info("Reloading configuration is not available yet; restart the broker to apply changes.")
		}
	}
}

func netName(l *config.Listener) string {
	switch l.Network() {
	case "unix":
		return "unix"
	case "tcp6":
		return "ipv6"
	case "tcp4":
		return "ipv4"
	}
	return "tcp"
}

func listenerName(l *config.Listener) string {
	if l.UnixPath != "" {
		return l.UnixPath
	}
	return strconv.Itoa(l.Port)
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
	if len(cfg.Listeners) > 0 {
		// max_qos and max_topic_alias are per listener in mosquitto; the
		// broker core applies the first listener's values to all for now.
		o.MaxQoS = byte(cfg.Listeners[0].MaxQoS)
		o.MaxTopicAlias = uint16(cfg.Listeners[0].MaxTopicAlias)
	}
	return o
}

// newLogger writes mosquitto-style lines ("1732541234: message") to w.
func newLogger(w io.Writer, cfg *config.Config, verbose bool) *slog.Logger {
	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	return slog.New(&lineHandler{w: w, level: level, stamp: cfg.Log.Timestamp})
}

type lineHandler struct {
	w     io.Writer
	level slog.Level
	stamp bool
	attrs []slog.Attr
}

func (h *lineHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *lineHandler) Handle(_ context.Context, r slog.Record) error {
	buf := make([]byte, 0, 128)
	if h.stamp {
		t := r.Time
		if t.IsZero() {
			t = time.Now()
		}
		buf = strconv.AppendInt(buf, t.Unix(), 10)
		buf = append(buf, ": "...)
	}
	buf = append(buf, r.Message...)
	add := func(a slog.Attr) bool {
		buf = append(buf, ' ')
		buf = append(buf, a.Key...)
		buf = append(buf, '=')
		buf = strconv.AppendQuote(buf, a.Value.String())
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	buf = append(buf, '\n')
	_, err := h.w.Write(buf)
	return err
}

func (h *lineHandler) WithAttrs(as []slog.Attr) slog.Handler {
	n := *h
	n.attrs = append(append([]slog.Attr(nil), h.attrs...), as...)
	return &n
}

func (h *lineHandler) WithGroup(string) slog.Handler { return h }
