// Package pub implements "mamori pub", a drop-in mosquitto_pub: the same
// flags, messages, output and exit codes.
package pub

import (
	"bufio"
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
	cfg, err := clientflags.Parse(clientflags.Pub, args)
	if err != nil {
		return clientflags.ReportArgError(clientflags.Pub, err, stdout, stderr, usage)
	}
	if cfg.Topic == "" || cfg.Mode == clientflags.ModeNone {
		fmt.Fprint(stderr, "Error: Both topic and message must be supplied.\n")
		usage(stdout)
		return 1
	}
	if !cfg.LoadMessage(stdin, stderr) {
		return 1
	}
	out := &clientflags.Output{W: stdout}
	s, rc := cfg.Connect(context.Background(), out, stderr, nil)
	if rc != 0 {
		return rc
	}
	p := &publisher{s: s, cfg: cfg}
	if cfg.Mode == clientflags.ModeStdinLine {
		err = p.lines(stdin)
	} else {
		err = p.repeat()
	}
	if err != nil {
		return p.s.Lost(err) // lost while publishing
	}
	s.Disconnect(packet.NormalDisconnection)
	return 0
}

type publisher struct {
	s     *clientflags.Session
	cfg   *clientflags.Config
	first bool // a message has been sent (for topic aliases)
}

// message builds the next PUBLISH; with "-D publish topic-alias", only the
// first carries the topic, as mosquitto_pub does.
func (p *publisher) message(payload []byte) *client.Message {
	m := &client.Message{Topic: p.cfg.Topic, Payload: payload, QoS: p.cfg.QoS, Retain: p.cfg.Retain}
	if p.cfg.Version == packet.V5 {
		m.Props = p.cfg.PublishProps
		if p.cfg.TopicAlias() && p.first {
			m.Topic = ""
		}
	}
	p.first = true
	return m
}

func (p *publisher) repeat() error {
	payload := p.cfg.Message
	if p.cfg.Mode == clientflags.ModeNull {
		payload = nil
	}
	for i := 0; i < p.cfg.RepeatCount; i++ {
		if i > 0 && p.cfg.RepeatDelay > 0 {
			select {
			case <-time.After(p.cfg.RepeatDelay):
			case <-p.s.Client.Done():
				return p.s.Client.Err()
			}
		}
		m := p.message(payload)
		t, err := p.s.Client.PublishAsync(context.Background(), m)
		if err := p.sendWithID(m, t, err); err != nil {
			return err
		}
	}
	return nil
}

// sendWithID waits for the publish and reports a refusal as mosquitto_pub's
// warning; only a lost connection is an error.
func (p *publisher) sendWithID(m *client.Message, t *client.Token, err error) error {
	if err == nil {
		err = t.Wait(context.Background())
	}
	var ae *client.AckError
	if errors.As(err, &ae) {
		p.cfg.Errf(p.s.Stderr, "Warning: Publish %d failed: %s.\n", m.PacketID, clientflags.ReasonString(ae.Code))
		if len(ae.Props.ReasonString) > 0 {
			p.cfg.Errf(p.s.Stderr, "%s\n", ae.Props.ReasonString)
		}
		return nil
	}
	return err
}

// lines publishes each line of stdin (without its newline) as a message,
// keeping up to the in-flight window of QoS 1/2 messages outstanding.
func (p *publisher) lines(stdin io.Reader) error {
	r := bufio.NewReaderSize(stdin, 64<<10)
	type sent struct {
		m *client.Message
		t *client.Token
	}
	queue := make(chan sent, p.cfg.MaxInflight)
	errc := make(chan error, 1)
	go func() {
		var first error
		for s := range queue {
			if err := p.sendWithID(s.m, s.t, nil); err != nil && first == nil {
				first = err
			}
		}
		errc <- first
	}()
	var err error
	for {
		line, rerr := r.ReadBytes('\n')
		if len(line) > 0 {
			if line[len(line)-1] == '\n' {
				line = line[:len(line)-1]
			}
			m := p.message(line)
			t, perr := p.s.Client.PublishAsync(context.Background(), m)
			if perr != nil {
				err = perr
				break
			}
			queue <- sent{m, t}
		}
		if rerr != nil {
			break
		}
	}
	close(queue)
	if werr := <-errc; err == nil {
		err = werr
	}
	return err
}

func usage(w io.Writer) {
	io.WriteString(w, `mamori pub (mosquitto_pub) publishes a message on a single topic and exits.

Usage: mamori pub {[-h host] [--unix path] [-p port] [-u username] [-P password] -t topic | -L URL}
                  {-f file | -l | -n | -m message | -s}
                  [-c] [-k keepalive] [-q qos] [-r] [--repeat N] [--repeat-delay time] [-x session-expiry]
                  [-A bind_address] [--nodelay] [-i id] [-I id_prefix] [-d] [--quiet] [-M max_inflight]
                  [-V 31|311|5] [-D command identifier value]...
                  [--will-topic topic [--will-payload payload] [--will-qos qos] [--will-retain]]
                  [{--cafile file | --capath dir | --tls-use-os-certs} [--cert file [--key file] [--cert-pass pass]]
                   [--servername name] [--insecure] [--tls-version v] [--ciphers list] [--tls-alpn proto]
                   [--tls-keylog file]]
                  [--psk hex-key --psk-identity identity] [--proxy socks5h://...] [--ws]
       mamori pub --help

Every mosquitto_pub flag has the same meaning; see mosquitto_pub(1).
-h is the host; -L takes mqtt://, mqtts://, ws:// and wss:// URLs.
mamori adds --servername (TLS name to verify, independent of -h), --cert with a
PKCS#12 bundle, --cert-pass for an encrypted key or bundle, --tls-keylog and --ws.
`)
}
