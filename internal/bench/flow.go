package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// setupConcurrency is how many connections are opened at once while a flow
// scenario sets up.
const setupConcurrency = 16

// quietTime ends the wait for deliveries early: a broker that has sent
// nothing for this long after publishing stopped has nothing left to send.
const quietTime = time.Second

// runFlow runs fanin, fanout, qos1 and latency: publishers and subscribers
// connected first, then a publishing phase, then a drain phase that waits
// for the deliveries still on their way.
func runFlow(ctx context.Context, cfg *Config, res *Result) error {
	res.Publishers, res.Subscribers, res.QoS = cfg.Publishers, cfg.Subscribers, int(cfg.QoS)
	res.PayloadSize, res.TargetRate = cfg.PayloadSize, cfg.Rate
	if cfg.QoS > 0 {
		res.Window = cfg.Window
	}
	prefix := cfg.Topic
	// Fan-out subscribers share one exact topic; everywhere else each
	// publisher has a topic of its own under a wildcard subscription.
	filter := prefix + "/#"
	topic := func(i int) string { return prefix + "/" + strconv.Itoa(i) }
	if cfg.Scenario == FanOut {
		filter = prefix + "/0"
		topic = func(int) string { return prefix + "/0" }
	}

	base := time.Now()
	sinks := make([]*sink, cfg.Subscribers)
	pubs := make([]*publisher, cfg.Publishers)
	var closeOnce sync.Once
	closeAll := func() {
		closeOnce.Do(func() {
			for _, s := range sinks {
				if s != nil {
					s.c.nc.Close()
				}
			}
			for _, p := range pubs {
				if p != nil {
					p.c.nc.Close()
				}
			}
		})
	}
	defer closeAll()

	err := parallel(ctx, cfg.Subscribers, setupConcurrency, func(ctx context.Context, i int) error {
		c, err := dial(ctx, cfg, cfg.ClientID+"s"+strconv.Itoa(i))
		if err != nil {
			return fmt.Errorf("subscriber %d: %w", i, err)
		}
		if err := c.subscribe(ctx, filter, cfg.QoS); err != nil {
			c.nc.Close()
			return fmt.Errorf("subscriber %d: %w", i, err)
		}
		sinks[i] = &sink{c: c, track: NewTracker(cfg.Publishers, cfg.Scenario == Latency), base: base, done: make(chan struct{})}
		return nil
	})
	if err != nil {
		return err
	}
	err = parallel(ctx, cfg.Publishers, setupConcurrency, func(ctx context.Context, i int) error {
		c, err := dial(ctx, cfg, cfg.ClientID+"p"+strconv.Itoa(i))
		if err != nil {
			return fmt.Errorf("publisher %d: %w", i, err)
		}
		pubs[i] = newPublisher(c, uint32(i), topic(i), cfg)
		return nil
	})
	if err != nil {
		return err
	}

	var sent, recv atomic.Int64
	for _, s := range sinks {
		go s.run(&recv)
	}
	for _, p := range pubs {
		if p.qos > 0 {
			go p.ackLoop()
		}
	}

	meter := startCPU(cfg.BrokerPID)
	stop := make(chan struct{})
	var stopOnce sync.Once
	stopNow := func() { stopOnce.Do(func() { close(stop) }) }
	if cfg.Duration > 0 {
		t := time.AfterFunc(cfg.Duration, stopNow)
		defer t.Stop()
	}
	unwatch := context.AfterFunc(ctx, stopNow)
	defer unwatch()

	start := time.Now()
	prog := startProgress(cfg.Progress, func(el time.Duration) string {
		s, r := sent.Load(), recv.Load()
		return fmt.Sprintf("%s %3.0fs  sent %s (%s/s)  delivered %s (%s/s)", cfg.Scenario, el.Seconds(),
			Count(s), Rate(float64(s)/el.Seconds()), Count(r), Rate(float64(r)/el.Seconds()))
	})
	defer prog.stop()

	pubErrs := make([]error, len(pubs))
	var wg sync.WaitGroup
	for i, p := range pubs {
		pc := pace{start: start, rate: cfg.Rate / float64(len(pubs)), limit: uint64(cfg.Count)}
		wg.Add(1)
		go func() {
			defer wg.Done()
			pubErrs[i] = p.run(stop, pc, cfg.Batch, base, cfg.Scenario == Latency, &sent)
		}()
	}
	pubsDone := make(chan struct{})
	go func() { wg.Wait(); close(pubsDone) }()
	// A publisher blocked in a write because the broker stopped reading
	// is cut loose once the drain time has passed after the stop.
	select {
	case <-pubsDone:
	case <-stop:
		select {
		case <-pubsDone:
		case <-time.After(cfg.Drain):
			for _, p := range pubs {
				p.c.nc.SetWriteDeadline(time.Now())
			}
			<-pubsDone
		}
	}
	stopNow()
	pubEnd := time.Now()
	res.Elapsed = pubEnd.Sub(start).Seconds()

	// owed is the number of deliveries the broker owes so far: every
	// accepted message (sent at QoS 0, acknowledged at QoS 1) once per
	// subscriber.
	owed := func() int64 {
		var n int64
		for _, p := range pubs {
			if p.qos > 0 {
				n += int64(p.acked.Load())
			} else {
				n += int64(p.sent())
			}
		}
		return n * int64(len(sinks))
	}
	waitDrain(ctx, pubs, owed, &recv, cfg.Drain)
	brokerCPU, selfCPU, cpuErr := meter.stop()
	closeAll()
	for _, s := range sinks {
		<-s.done
	}
	for _, p := range pubs {
		if p.qos > 0 {
			<-p.ackDone
		}
	}
	prog.stop()

	perPub := make([]uint64, len(pubs))
	for i, p := range pubs {
		res.Sent += int64(p.sent())
		perPub[i] = p.sent()
		if p.qos > 0 {
			res.Acked += int64(p.acked.Load())
			res.Refused += int64(p.refused.Load())
			perPub[i] = min(p.acked.Load(), p.sent())
		}
		if err := pubErrs[i]; err != nil && !isDeadline(err) {
			res.Errors = append(res.Errors, fmt.Sprintf("publisher %d: %v", i, err))
		}
	}
	var total Counts
	var samples []int64
	var last int64
	for i, s := range sinks {
		total.Add(s.track.Counts(perPub))
		samples = append(samples, s.track.Latency...)
		last = max(last, s.last.Load())
		if s.err != nil && !errors.Is(s.err, net.ErrClosed) {
			res.Errors = append(res.Errors, fmt.Sprintf("subscriber %d: %v", i, s.err))
		}
	}
	res.Deliveries = &total
	res.SendRate = float64(res.Sent) / res.Elapsed
	if last > 0 {
		lastAt := base.Add(time.Duration(last))
		if d := lastAt.Sub(start).Seconds(); d > 0 {
			res.DeliverRate = float64(total.Unique) / d
		}
		res.DrainTime = max(0, lastAt.Sub(pubEnd).Seconds())
	}
	if cfg.Scenario == Latency || len(samples) > 0 {
		p := Summarize(samples)
		res.Latency = &p
	}
	setCPU(res, brokerCPU, selfCPU, cpuErr, total.Unique, "delivered message")
	return nil
}

// waitDrain waits after publishing until every owed delivery has arrived
// (and, at QoS 1, every message sent has been acknowledged), the broker has
// been quiet for quietTime, or drain has passed.
func waitDrain(ctx context.Context, pubs []*publisher, owed func() int64, recv *atomic.Int64, drain time.Duration) {
	deadline := time.Now().Add(drain)
	lastCount, lastChange := recv.Load(), time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		r := recv.Load()
		acked := true
		for _, p := range pubs {
			if p.qos > 0 && p.acked.Load() < p.sent() {
				acked = false
			}
		}
		now := time.Now()
		if r != lastCount {
			lastCount, lastChange = r, now
		}
		if (acked && r >= owed()) || now.Sub(lastChange) >= quietTime || now.After(deadline) {
			return
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}

// setCPU fills the CPU fields of res.
func setCPU(res *Result, broker, self time.Duration, err error, units int64, unit string) {
	res.BenchCPU = self.Seconds()
	res.BrokerCPU = -1
	if err != nil {
		res.Errors = append(res.Errors, fmt.Sprintf("broker CPU: %v", err))
		return
	}
	if broker < 0 {
		return
	}
	res.BrokerCPU = broker.Seconds()
	res.Unit = unit
	if units > 0 {
		res.CPUPerUnit = float64(broker.Microseconds()) / float64(units)
	}
}

func isDeadline(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded)
}

// progress prints a line a second until stopped.
type progress struct {
	done chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

func startProgress(w io.Writer, line func(elapsed time.Duration) string) *progress {
	p := &progress{done: make(chan struct{})}
	if w == nil {
		return p
	}
	start := time.Now()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-p.done:
				return
			case now := <-t.C:
				fmt.Fprintln(w, line(now.Sub(start)))
			}
		}
	}()
	return p
}

func (p *progress) stop() {
	p.once.Do(func() { close(p.done) })
	p.wg.Wait()
}
