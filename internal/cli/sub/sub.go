// Package sub implements "mamori sub", a drop-in mosquitto_sub: the same
// flags, output formats (-F, -v, -N, -d) and exit codes.
package sub

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mamori-mqtt/mamori/internal/cli/clientflags"
	"github.com/mamori-mqtt/mamori/internal/client"
	"github.com/mamori-mqtt/mamori/internal/packet"
)

// exitTimeout is mosquitto_sub's status when -W expires (libmosquitto's
// MOSQ_ERR_TIMEOUT); a lost connection is clientflags.ExitConnectionLost.
const exitTimeout = 27

// Run executes the command with args (without the command name) and returns
// the process exit code.
func Run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cfg, err := clientflags.Parse(clientflags.Sub, args)
	if err != nil {
		return clientflags.ReportArgError(clientflags.Sub, err, stdout, stderr, usage)
	}
	if cfg.NoRetain && cfg.RetainedOnly {
		fmt.Fprint(stderr, "\nError: Combining '-R' and '--retained-only' makes no sense.\n")
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, cfg, stdout, stderr)
}

// subscriber is the state of mosquitto_sub's message callback.
type subscriber struct {
	cfg     *clientflags.Config
	s       *clientflags.Session
	printer *clientflags.Printer
	out     *clientflags.Output

	mu       sync.Mutex
	stopped  bool // no more messages are handled
	count    int
	removing sync.WaitGroup // --remove-retained publishes in flight
	finished chan struct{}  // closed when the command should leave
	once     sync.Once
	buf      []byte
}

func run(ctx context.Context, cfg *clientflags.Config, stdout, stderr io.Writer) int {
	sb := &subscriber{cfg: cfg, printer: cfg.NewPrinter(stderr), out: &clientflags.Output{W: stdout},
		finished: make(chan struct{})}
	s, rc := cfg.Connect(ctx, sb.out, stderr, func(o *client.Options) { o.OnMessage = sb.onMessage })
	if rc != 0 {
		return rc
	}
	sb.s = s
	subscribed := make(chan error, 1)
	go func() { subscribed <- sb.subscribe(ctx) }()

	var timeout <-chan time.Time
	if cfg.Timeout > 0 {
		t := time.NewTimer(time.Duration(cfg.Timeout) * time.Second)
		defer t.Stop()
		timeout = t.C
	}
	for {
		select {
		case err := <-subscribed:
			if err != nil {
				return sb.s.Lost(err)
			}
			if cfg.ExitAfterSub {
				s.Disconnect(packet.NormalDisconnection)
				return 0
			}
			subscribed = nil
		case <-sb.finished:
			sb.removing.Wait()
			s.Disconnect(packet.NormalDisconnection)
			return 0
		case <-timeout:
			sb.stop()
			cfg.Errf(stderr, "Timed out\n")
			s.Disconnect(packet.DisconnectWithWill)
			return exitTimeout
		case <-ctx.Done():
			sb.stop()
			s.Disconnect(packet.DisconnectWithWill)
			return 0
		case <-s.Client.Done():
			err := s.Client.Err()
			var de *client.DisconnectError
			if errors.As(err, &de) || sb.isStopped() {
				return sb.s.Lost(err)
			}
			// Like mosquitto_sub, reconnect after a lost connection (a
			// broker restart, a network outage) and subscribe again.
			s.Client.Close()
			ns, rc := sb.reconnect(ctx, timeout)
			if ns == nil {
				return rc
			}
			s = ns
			subscribed = make(chan error, 1)
			go func() { subscribed <- sb.subscribe(ctx) }()
		}
	}
}

// reconnectDelay is the pause between reconnection attempts.
const reconnectDelay = time.Second

// reconnect connects again until it succeeds, the command is interrupted
// (exit 0) or -W expires (exit 27). Failed attempts print nothing, as
// mosquitto_sub's do not.
func (sb *subscriber) reconnect(ctx context.Context, timeout <-chan time.Time) (*clientflags.Session, int) {
	for {
		select {
		case <-ctx.Done():
			return nil, 0
		case <-timeout:
			sb.cfg.Errf(sb.s.Stderr, "Timed out\n")
			return nil, exitTimeout
		case <-time.After(reconnectDelay):
		}
		last := sb.s.Client.LastPacketID()
		ns, rc := sb.cfg.Connect(ctx, sb.out, io.Discard, func(o *client.Options) {
			o.OnMessage = sb.onMessage
			o.LastPacketID = last
		})
		if rc == 0 {
			sb.mu.Lock()
			sb.s = ns
			sb.mu.Unlock()
			return ns, 0
		}
	}
}

func (sb *subscriber) isStopped() bool {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	return sb.stopped
}

func (sb *subscriber) subscribe(ctx context.Context) error {
	cfg := sb.cfg
	c := sb.s.Client
	if len(cfg.Topics) > 0 {
		subs := make([]packet.Subscription, len(cfg.Topics))
		for i, t := range cfg.Topics {
			subs[i] = packet.Subscription{Filter: []byte(t), QoS: cfg.QoS, RetainAsPublished: cfg.RetainAsPublished}
			if cfg.NoRetain {
				subs[i].RetainHandling = 2
			}
		}
		var props *packet.Properties
		if cfg.Version == packet.V5 {
			props = &cfg.SubscribeProps
		}
		ack, err := c.Subscribe(ctx, props, subs...)
		if err != nil {
			return err
		}
		if cfg.Debug && !cfg.Quiet {
			var b strings.Builder
			fmt.Fprintf(&b, "Subscribed (mid: %d):", ack.PacketID)
			for i, code := range ack.Codes {
				if i > 0 {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, " %d", code)
			}
			b.WriteByte('\n')
			sb.out.Write([]byte(b.String()))
		}
	}
	for _, t := range cfg.UnsubTopics {
		var props *packet.Properties
		if cfg.Version == packet.V5 {
			props = &cfg.UnsubscribeProps
		}
		if _, err := c.Unsubscribe(ctx, props, t); err != nil {
			return err
		}
	}
	return nil
}

// onMessage runs on the client's read goroutine, in order.
func (sb *subscriber) onMessage(m *client.Message) {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	cfg := sb.cfg
	if sb.stopped {
		return
	}
	if cfg.RetainedOnly && !m.Retain {
		sb.stopped = true
		sb.finish()
		return
	}
	if m.Retain && cfg.NoRetain {
		return
	}
	for _, f := range cfg.FilterOuts {
		if Matches(f, m.Topic) {
			return
		}
	}
	if cfg.RemoveRetained && m.Retain {
		sb.removeRetained(m.Topic)
	}
	sb.buf = sb.printer.Print(sb.buf[:0], m)
	if len(sb.buf) > 0 {
		sb.out.Write(sb.buf)
	}
	if cfg.MsgCount > 0 {
		sb.count++
		if sb.count == cfg.MsgCount {
			sb.stopped = true
			sb.finish()
		}
	}
}

// removeRetained clears a retained message by publishing an empty retained
// message at QoS 1; the read goroutine must not wait for the PUBACK itself.
func (sb *subscriber) removeRetained(topic string) {
	t, err := sb.s.Client.PublishAsync(context.Background(), &client.Message{Topic: topic, QoS: 1, Retain: true})
	if err != nil {
		return
	}
	sb.removing.Add(1)
	go func() {
		defer sb.removing.Done()
		t.Wait(context.Background())
	}()
}

func (sb *subscriber) finish() { sb.once.Do(func() { close(sb.finished) }) }

func (sb *subscriber) stop() {
	sb.mu.Lock()
	sb.stopped = true
	sb.mu.Unlock()
}

// Matches reports whether topic matches the subscription filter f, with
// MQTT's rule that wildcards at the first level do not match '$' topics.
func Matches(f, topic string) bool {
	if strings.HasPrefix(topic, "$") && (strings.HasPrefix(f, "+") || strings.HasPrefix(f, "#")) {
		return false
	}
	fl, tl := strings.Split(f, "/"), strings.Split(topic, "/")
	for i, l := range fl {
		if l == "#" {
			return true // also matches the parent level: "a/#" matches "a"
		}
		if i >= len(tl) || (l != "+" && l != tl[i]) {
			return false
		}
	}
	return len(fl) == len(tl)
}

func usage(w io.Writer) {
	io.WriteString(w, `mamori sub (mosquitto_sub) subscribes to topics and prints the messages it receives.

Usage: mamori sub {[-h host] [--unix path] [-p port] [-u username] [-P password] -t topic | -L URL [-t topic]}
                  [-c] [-k keepalive] [-q qos] [-x session-expiry-interval]
                  [-C msg_count] [-E] [-R] [--retained-only] [--remove-retained] [-T filter_out] [-U topic]
                  [-F format] [-W timeout_secs] [-A bind_address] [--nodelay] [-i id] [-I id_prefix]
                  [-d] [-N] [--quiet] [-v] [--pretty] [--random-filter chance] [--retain-as-published]
                  [-V 31|311|5] [-D command identifier value]...
                  [--will-topic topic [--will-payload payload] [--will-qos qos] [--will-retain]]
                  [{--cafile file | --capath dir | --tls-use-os-certs} [--cert file [--key file] [--cert-pass pass]]
                   [--servername name] [--insecure] [--tls-version v] [--ciphers list] [--tls-alpn proto]
                   [--tls-keylog file]]
                  [--psk hex-key --psk-identity identity] [--proxy socks5h://...] [--ws]
       mamori sub --help

Every mosquitto_sub flag has the same meaning; see mosquitto_sub(1), including
the -F format specifiers (%t %p %q %r %m %l %x %X %j %J %I %U %A %C %D %E %F %P %R %S,
@ time conversions and \ escapes).
mamori adds --servername (TLS name to verify, independent of -h), --cert with a
PKCS#12 bundle, --cert-pass for an encrypted key or bundle, --tls-keylog and --ws.
`)
}
