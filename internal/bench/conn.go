package bench

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/mamori-mqtt/mamori/internal/packet"
)

// mqttConn is one benchmark connection after CONNACK. The benchmark speaks
// MQTT itself with internal/packet instead of using internal/client because
// it needs to own the socket: publishers write pre-encoded batches and
// subscribers frame raw reads, with no goroutine or channel per message.
type mqttConn struct {
	nc      net.Conn
	r       *packet.Reader
	v       packet.Version
	recvMax int // the broker's Receive Maximum (MQTT 5), 65535 otherwise
}

// connectTimeout bounds dialling, the TLS handshake and CONNACK.
const connectTimeout = 10 * time.Second

// dial opens a connection and completes CONNECT/CONNACK as id.
func dial(ctx context.Context, cfg *Config, id string) (*mqttConn, error) {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, err
	}
	if cfg.TLS != nil {
		tc := tls.Client(nc, cfg.TLS)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("TLS handshake: %w", err)
		}
		nc = tc
	}
	c := &mqttConn{nc: nc, r: packet.NewReader(nc, 0), v: cfg.version(), recvMax: 65535}
	if err := c.connect(ctx, cfg, id); err != nil {
		nc.Close()
		return nil, err
	}
	return c, nil
}

func (c *mqttConn) connect(ctx context.Context, cfg *Config, id string) error {
	dl, _ := ctx.Deadline()
	c.nc.SetDeadline(dl)
	defer c.nc.SetDeadline(time.Time{})
	p := &packet.Connect{Version: c.v, ClientID: []byte(id), CleanStart: true, KeepAlive: cfg.KeepAlive}
	if _, err := c.nc.Write(p.Append(nil, c.v)); err != nil {
		return fmt.Errorf("send CONNECT: %w", err)
	}
	h, body, err := c.next()
	if err != nil {
		return fmt.Errorf("wait for CONNACK: %w", err)
	}
	if h.Type != packet.CONNACK {
		return fmt.Errorf("expected CONNACK, got %v", h.Type)
	}
	var ack packet.Connack
	if err := ack.Decode(body, c.v); err != nil {
		return fmt.Errorf("bad CONNACK: %w", err)
	}
	if ack.Code != 0 {
		return fmt.Errorf("connection refused: CONNACK code %#x", byte(ack.Code))
	}
	if ack.Props.Present(packet.PropReceiveMaximum) {
		c.recvMax = int(ack.Props.ReceiveMaximum)
	}
	return nil
}

// next reads the next whole packet; body is valid until the next read.
func (c *mqttConn) next() (packet.Header, []byte, error) { return c.r.ReadPacket() }

// subscribe subscribes to filter and waits for a granted SUBACK.
func (c *mqttConn) subscribe(ctx context.Context, filter string, qos byte) error {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	dl, _ := ctx.Deadline()
	c.nc.SetDeadline(dl)
	defer c.nc.SetDeadline(time.Time{})
	s := &packet.Subscribe{PacketID: 1, Subs: []packet.Subscription{{Filter: []byte(filter), QoS: qos}}}
	if _, err := c.nc.Write(s.Append(nil, c.v)); err != nil {
		return fmt.Errorf("send SUBSCRIBE: %w", err)
	}
	for {
		h, body, err := c.next()
		if err != nil {
			return fmt.Errorf("wait for SUBACK: %w", err)
		}
		if h.Type != packet.SUBACK {
			continue // e.g. a retained message from an earlier run
		}
		var sa packet.Suback
		if err := sa.Decode(body, c.v); err != nil {
			return fmt.Errorf("bad SUBACK: %w", err)
		}
		if len(sa.Codes) != 1 || sa.Codes[0] >= 0x80 {
			return fmt.Errorf("subscription to %q refused (%v)", filter, sa.Codes)
		}
		if byte(sa.Codes[0]) < qos {
			return fmt.Errorf("subscription to %q granted QoS %d, not %d", filter, sa.Codes[0], qos)
		}
		return nil
	}
}

// disconnect sends DISCONNECT (best effort, without waiting) and closes.
func (c *mqttConn) disconnect() {
	c.nc.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	c.nc.Write((&packet.Disconnect{}).Append(nil, c.v))
	c.nc.Close()
}

// parallel runs fn(0..n-1) on at most conc goroutines and returns the
// first error; after an error no further calls start.
func parallel(ctx context.Context, n, conc int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		next int
	)
	for range min(n, conc) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= n {
					return
				}
				if err := fn(ctx, i); err != nil {
					cancel(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ctx.Err()
}
