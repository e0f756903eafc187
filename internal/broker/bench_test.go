package broker

import (
	"io"
	"net"
	"sync"
	"testing"

	"github.com/mamori-mqtt/mamori/internal/packet"
)

// benchSubscriber connects, subscribes and counts PUBLISH packets until n
// have arrived, then reports on done.
func benchSubscriber(b *testing.B, addr, id, filter string, n int, done chan<- struct{}) {
	b.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	c := &rawClient{t: &testing.T{}, nc: nc, r: packet.NewReader(nc, 0), v: packet.V311}
	nc.Write((&packet.Connect{Version: packet.V311, ClientID: []byte(id), CleanStart: true}).Append(nil, 0))
	if _, err := c.recvErr(5e9); err != nil {
		b.Fatal(err)
	}
	nc.Write((&packet.Subscribe{PacketID: 1, Subs: []packet.Subscription{{Filter: []byte(filter)}}}).Append(nil, packet.V311))
	if _, err := c.recvErr(5e9); err != nil {
		b.Fatal(err)
	}
	go func() {
		defer nc.Close()
		r := packet.NewReader(nc, 0)
		got := 0
		for got < n {
			if err := r.Fill(); err != nil {
				return
			}
			for {
				_, _, ok, err := r.Next()
				if err != nil || !ok {
					break
				}
				got++
			}
		}
		done <- struct{}{}
	}()
}

func benchPublisher(b *testing.B, addr, id string) net.Conn {
	b.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	nc.Write((&packet.Connect{Version: packet.V311, ClientID: []byte(id), CleanStart: true}).Append(nil, 0))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(nc, buf); err != nil {
		b.Fatal(err)
	}
	return nc
}

// batch is many QoS 0 PUBLISH packets in one buffer, as a busy publisher's
// writes look to the broker.
func batch(topicName string, count int) []byte {
	var out []byte
	p := &packet.Publish{Topic: []byte(topicName), Payload: make([]byte, 64)}
	for range count {
		out = p.Append(out, packet.V311)
	}
	return out
}

// BenchmarkFanIn: 4 publishers, one wildcard subscriber; b.N messages.
func BenchmarkFanIn(b *testing.B) {
	_, addr := startBrokerB(b)
	const pubs = 4
	done := make(chan struct{}, 1)
	benchSubscriber(b, addr, "sink", "bench/#", b.N, done)
	per := b.N / pubs
	rest := b.N - per*pubs
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	for i := range pubs {
		n := per
		if i == 0 {
			n += rest
		}
		nc := benchPublisher(b, addr, "p"+string(rune('a'+i)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			chunk := batch("bench/in", 256)
			for n > 0 {
				k := min(n, 256)
				nc.Write(chunk[:k*len(chunk)/256])
				n -= k
			}
		}()
	}
	wg.Wait()
	<-done
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
}

// BenchmarkFanOut: one publisher, 16 subscribers; b.N published messages.
func BenchmarkFanOut(b *testing.B) {
	_, addr := startBrokerB(b)
	const subs = 16
	done := make(chan struct{}, subs)
	for i := range subs {
		benchSubscriber(b, addr, "s"+string(rune('a'+i)), "bench/out", b.N, done)
	}
	nc := benchPublisher(b, addr, "src")
	b.ReportAllocs()
	b.ResetTimer()
	chunk := batch("bench/out", 256)
	for n := b.N; n > 0; {
		k := min(n, 256)
		nc.Write(chunk[:k*len(chunk)/256])
		n -= k
	}
	for range subs {
		<-done
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*subs)/b.Elapsed().Seconds(), "delivered/s")
}

func startBrokerB(b *testing.B) (*Broker, string) {
	opts := DefaultOptions()
	opts.SysInterval = 0
	opts.ConnectionMessages = false
	opts.MaxOutBytes = 64 << 20 // measure throughput, not drops
	br, err := New(opts)
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go br.Serve(ln, nil)
	b.Cleanup(func() { br.Close() })
	return br, ln.Addr().String()
}

func TestRouteQoS0DoesNotAllocate(t *testing.T) {
	b, addr := startBroker(t, nil)
	sub := connectOK(t, addr, packet.V311, "sub")
	sub.subscribe(1, "z/#", 0)
	// A connection-less publisher context exercises route directly.
	from := &conn{b: b, w: new(work)}
	p := &packet.Publish{Topic: []byte("z/1"), Payload: make([]byte, 64)}
	in := inbound{topic: "z/1", payload: p.Payload, props: &from.w.props, pub: p}
	b.route(from, &in) // warm the scratch slices
	from.flushTouched()
	allocs := testing.AllocsPerRun(200, func() {
		in.msg = nil
		b.route(from, &in)
		from.w.touched = from.w.touched[:0]
	})
	if allocs > 0 {
		t.Fatalf("routing a QoS 0 message allocates %v times", allocs)
	}
}
