// Package rr implements "mamori rr", a drop-in mosquitto_rr: publish a
// request with an MQTT 5 response topic and print the first response.
package rr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/mamori-mqtt/mamori/internal/cli/clientflags"
	"github.com/mamori-mqtt/mamori/internal/client"
	"github.com/mamori-mqtt/mamori/internal/packet"
)

// Run executes the command with args (without the command name) and returns
// the process exit code.
func Run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cfg, err := clientflags.Parse(clientflags.RR, args)
	if err != nil {
		return clientflags.ReportArgError(clientflags.RR, err, stdout, stderr, usage)
	}
	if cfg.Topic == "" || cfg.Mode == clientflags.ModeNone || cfg.ResponseTopic == "" {
		fmt.Fprint(stderr, "Error: All of topic, message, and response topic must be supplied.\n")
		fmt.Fprint(stderr, "\nUse 'mosquitto_rr --help' to see usage.\n")
		return 1
	}
	if cfg.PublishProps.Present(packet.PropResponseTopic) {
		cfg.Errf(stderr, "Error in PUBLISH properties: Duplicate response topic.\n")
		return 1
	}
	cfg.PublishProps.Set(packet.PropResponseTopic)
	cfg.PublishProps.ResponseTopic = []byte(cfg.ResponseTopic)
	if !cfg.LoadMessage(stdin, stderr) {
		return 1
	}

	out := &clientflags.Output{W: stdout}
	printer := cfg.NewPrinter(stderr)
	got := make(chan struct{}, 1)
	s, rc := cfg.Connect(context.Background(), out, stderr, func(o *client.Options) {
		o.OnMessage = func(m *client.Message) {
			out.Write(printer.Print(nil, m))
			select {
			case got <- struct{}{}:
			default:
			}
		}
	})
	if rc != 0 {
		return rc
	}
	c := s.Client
	var timeout <-chan time.Time
	if cfg.Timeout > 0 {
		t := time.NewTimer(time.Duration(cfg.Timeout) * time.Second)
		defer t.Stop()
		timeout = t.C
	}

	done := make(chan error, 1)
	go func() { done <- request(s, cfg) }()
	for {
		select {
		case err := <-done:
			if err != nil {
				return lost(s, err)
			}
			done = nil
		case <-got:
			s.Disconnect(packet.NormalDisconnection)
			return 0
		case <-timeout:
			s.Disconnect(packet.DisconnectWithWill)
			cfg.Errf(stderr, "Timed out\n")
			return 27
		case <-c.Done():
			return lost(s, c.Err())
		}
	}
}

// request subscribes to the response topic and, once subscribed, publishes
// the request.
func request(s *clientflags.Session, cfg *clientflags.Config) error {
	ctx := context.Background()
	var subProps *packet.Properties
	if cfg.Version == packet.V5 {
		subProps = &cfg.SubscribeProps
	}
	ack, err := s.Client.Subscribe(ctx, subProps, packet.Subscription{Filter: []byte(cfg.ResponseTopic), QoS: cfg.QoS})
	if err != nil {
		return err
	}
	if len(ack.Codes) > 0 && ack.Codes[0] >= 0x80 {
		return &refused{code: ack.Codes[0]}
	}
	m := &client.Message{Topic: cfg.Topic, Payload: cfg.Message, QoS: cfg.QoS, Retain: cfg.Retain}
	if cfg.Version == packet.V5 {
		m.Props = cfg.PublishProps
	}
	err = s.Client.Publish(ctx, m)
	var ae *client.AckError
	if errors.As(err, &ae) {
		return nil // mosquitto_rr waits for a response regardless
	}
	return err
}

type refused struct{ code packet.ReasonCode }

func (r *refused) Error() string { return clientflags.ReasonString(r.code) }

func lost(s *clientflags.Session, err error) int {
	var r *refused
	if errors.As(err, &r) {
		s.Config.Errf(s.Stderr, "%s\n", clientflags.ReasonString(r.code))
		s.Disconnect(packet.NormalDisconnection)
		return 0
	}
	s.Client.Close()
	var de *client.DisconnectError
	if errors.As(err, &de) {
		s.Config.Errf(s.Stderr, "Error: %s\n", clientflags.ReasonString(de.Code))
		return int(de.Code)
	}
	s.Config.Errf(s.Stderr, "Error: The connection was lost.\n")
	return 7
}

func usage(w io.Writer) {
	io.WriteString(w, `mamori rr (mosquitto_rr) publishes a request and waits for a response (MQTT 5
request/response; -V 311 works with MQTT 3.1.1 brokers).

Usage: mamori rr {[-h host] [--unix path] [-p port] [-u username] [-P password] -t topic | -L URL} -e response-topic
                 {-f file | -n | -m message | -s}
                 [-c] [-k keepalive] [-q qos] [-R] [-x session-expiry-interval] [-F format] [-W timeout_secs]
                 [-A bind_address] [--nodelay] [-i id] [-I id_prefix] [-d] [-N] [--quiet] [-v] [--pretty]
                 [-V 31|311|5] [-D command identifier value]...
                 [--will-topic topic [--will-payload payload] [--will-qos qos] [--will-retain]]
                 [{--cafile file | --capath dir | --tls-use-os-certs} [--cert file [--key file] [--cert-pass pass]]
                  [--servername name] [--insecure] [--tls-version v] [--ciphers list] [--tls-alpn proto]
                  [--tls-keylog file]]
                 [--psk hex-key --psk-identity identity] [--proxy socks5h://...] [--ws]
       mamori rr --help

Every mosquitto_rr flag has the same meaning; see mosquitto_rr(1).
`)
}
