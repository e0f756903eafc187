package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// runConn is the connection storm: Concurrency workers each connect (TCP,
// TLS handshake when configured, CONNECT, CONNACK), disconnect and start
// again, until Connections have been made or Duration has passed. Every
// connection is a full handshake: the TLS configuration has no session
// cache.
func runConn(ctx context.Context, cfg *Config, res *Result) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	end := time.Now().Add(365 * 24 * time.Hour)
	if cfg.Duration > 0 {
		end = time.Now().Add(cfg.Duration)
		var c2 context.CancelFunc
		ctx, c2 = context.WithDeadline(ctx, end)
		defer c2()
	}
	var (
		started, done, failed atomic.Int64
		mu                    sync.Mutex
		samples               []int64
		firstErr              error
		wg                    sync.WaitGroup
	)
	total := int64(cfg.Connections)
	meter := startCPU(cfg.BrokerPID)
	start := time.Now()
	prog := startProgress(cfg.Progress, func(el time.Duration) string {
		d := done.Load()
		return fmt.Sprintf("conn %3.0fs  connected %s (%s/s)  failed %s", el.Seconds(), Count(d),
			Rate(float64(d)/el.Seconds()), Count(failed.Load()))
	})
	defer prog.stop()
	for w := range cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []int64
			defer func() {
				mu.Lock()
				samples = append(samples, mine...)
				mu.Unlock()
			}()
			for n := 0; ctx.Err() == nil; n++ {
				i := started.Add(1)
				if total > 0 && i > total {
					return
				}
				t0 := time.Now()
				c, err := dial(ctx, cfg, fmt.Sprintf("%sc%d-%d", cfg.ClientID, w, n))
				if err != nil {
					// The dialler's own deadline can fire a moment before
					// the context reports it is done.
					if ctx.Err() != nil || !time.Now().Before(end) {
						return // the storm ended during this attempt
					}
					failed.Add(1)
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					// A broker that refuses everything must not turn
					// the storm into a busy loop.
					time.Sleep(10 * time.Millisecond)
					continue
				}
				mine = append(mine, int64(time.Since(t0)))
				done.Add(1)
				c.disconnect()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	brokerCPU, selfCPU, cpuErr := meter.stop()
	prog.stop()

	res.Elapsed = elapsed.Seconds()
	res.Connections, res.Failed = done.Load(), failed.Load()
	res.ConnRate = float64(res.Connections) / elapsed.Seconds()
	p := Summarize(samples)
	res.ConnLatency = &p
	if firstErr != nil {
		res.Errors = append(res.Errors, fmt.Sprintf("first failure: %v", firstErr))
	}
	setCPU(res, brokerCPU, selfCPU, cpuErr, res.Connections, "connection")
	return nil
}

// runIdle opens Connections connections, holds them idle for Hold, and
// reads the broker's resident memory before and after. The connections
// hold no goroutine and no buffer on this side, so the bench itself stays
// small whatever the count.
func runIdle(ctx context.Context, cfg *Config, res *Result) error {
	var rss0 int64
	if cfg.BrokerPID > 0 {
		var err error
		if rss0, err = procRSS(cfg.BrokerPID); err != nil {
			return fmt.Errorf("broker RSS: %w", err)
		}
	}
	conns := make([]*mqttConn, cfg.Connections)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.nc.Close()
			}
		}
	}()
	var done, failed atomic.Int64
	var mu sync.Mutex
	var firstErr error
	var samples []int64
	meter := startCPU(cfg.BrokerPID)
	start := time.Now()
	prog := startProgress(cfg.Progress, func(el time.Duration) string {
		return fmt.Sprintf("idle %3.0fs  connected %s of %s  failed %s", el.Seconds(), Count(done.Load()),
			Count(int64(cfg.Connections)), Count(failed.Load()))
	})
	defer prog.stop()
	err := parallel(ctx, cfg.Connections, cfg.Concurrency, func(ctx context.Context, i int) error {
		t0 := time.Now()
		c, err := dial(ctx, cfg, fmt.Sprintf("%si%d", cfg.ClientID, i))
		if err != nil {
			failed.Add(1)
			mu.Lock()
			if firstErr == nil {
				firstErr = err
			}
			mu.Unlock()
			return nil
		}
		d := int64(time.Since(t0))
		c.r.Release() // an idle connection holds no read buffer here either
		conns[i] = c
		done.Add(1)
		mu.Lock()
		samples = append(samples, d)
		mu.Unlock()
		return nil
	})
	elapsed := time.Since(start)
	brokerCPU, selfCPU, cpuErr := meter.stop()
	if err != nil {
		return err
	}
	res.Elapsed = elapsed.Seconds()
	res.Connections, res.Failed = done.Load(), failed.Load()
	p := Summarize(samples)
	res.ConnLatency = &p
	if firstErr != nil {
		res.Errors = append(res.Errors, fmt.Sprintf("first failure: %v", firstErr))
	}
	setCPU(res, brokerCPU, selfCPU, cpuErr, res.Connections, "connection")

	// The broker's memory settles after the last CONNACK (buffers from the
	// handshake are released, a Go broker's heap is collected), so RSS is
	// read after the connections have been idle for a while.
	select {
	case <-time.After(cfg.Hold):
	case <-ctx.Done():
	}
	prog.stop()
	if cfg.BrokerPID > 0 {
		rss1, err := procRSS(cfg.BrokerPID)
		if err != nil {
			return fmt.Errorf("broker RSS: %w", err)
		}
		res.RSSBefore, res.RSSAfter = rss0, rss1
		if res.Connections > 0 {
			res.RSSPerConn = float64(rss1-rss0) / float64(res.Connections)
		}
	}
	return nil
}
