//go:build linux

package broker

import (
	"container/heap"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// Parking keeps idle plain connections without a goroutine: after
// parkAfter of silence (at once after CONNACK) the read loop registers the
// socket in an epoll set of the broker's own and returns; when the socket
// becomes readable (or is closed, or the deadline passes) a new goroutine
// resumes the loop. A goroutine's stack is most of what an idle Go
// connection costs; Mosquitto, in C, holds well under a kilobyte. TLS and
// WebSocket connections keep their goroutine: their readers may hold
// decrypted bytes that the socket no longer shows.
//
// A parked connection that has completed CONNECT also gives up its
// net.Conn ("released"): the broker keeps only a duplicate of the socket's
// descriptor, and the Go runtime's descriptor, poller entry, deadline
// timers and addresses are freed. A released connection reads and writes
// that descriptor directly (non-blocking), so an idle device's PINGREQ or a
// DISCONNECT is served without a net.Conn; it gets one back (restore) only
// when a write finds the socket full or when it turns busy again.
//
// Deadlines (keep-alive, connect timeout) live in one heap that the epoll
// goroutine waits on, not in a runtime timer per connection.

// parkAfter is how long a connection must be silent before it parks.
const parkAfter = time.Second

// errWouldBlock: a released connection's socket has nothing to read (or the
// connection has been given a net.Conn again meanwhile).
var errWouldBlock = errors.New("would block")

var errParked = errors.New("connection parked")

// parker owns the epoll set and the goroutine that waits on it.
type parker struct {
	epfd  int
	wakeR int // read end of the pipe that interrupts epoll_wait
	wakeW int // its write end

	mu     sync.Mutex
	next   int32
	byID   map[int32]*conn
	timers parkTimers
}

// parkTimers is a min-heap of parked connections by deadline
// (conn.parkDeadline); conn.heapIdx is each one's position, -1 when absent.
// Guarded by parker.mu.
type parkTimers []*conn

func (h parkTimers) Len() int           { return len(h) }
func (h parkTimers) Less(i, j int) bool { return h[i].parkDeadline < h[j].parkDeadline }
func (h parkTimers) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx = int32(i)
	h[j].heapIdx = int32(j)
}
func (h *parkTimers) Push(x any) {
	c := x.(*conn)
	c.heapIdx = int32(len(*h))
	*h = append(*h, c)
}
func (h *parkTimers) Pop() any {
	old := *h
	c := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	c.heapIdx = -1
	return c
}

// parkableFD returns the socket of a plain TCP or unix connection.
func parkableFD(nc net.Conn) int {
	var sc syscall.Conn
	switch c := nc.(type) {
	case *net.TCPConn:
		sc = c
	case *net.UnixConn:
		sc = c
	default:
		return -1
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1
	}
	fd := -1
	if rc.Control(func(f uintptr) { fd = int(f) }) != nil {
		return -1
	}
	return fd
}

// startParker creates the epoll set and its goroutine; without it (an
// error) connections simply never park.
func (b *Broker) startParker() {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		b.log.Warn("idle connections keep their goroutine: epoll unavailable", "err", err)
		return
	}
	// A pipe in the set (id 0) wakes the waiting goroutine when the broker
	// closes or a deadline earlier than every other is added.
	var wake [2]int
	if err := syscall.Pipe2(wake[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		syscall.Close(epfd)
		b.log.Warn("idle connections keep their goroutine: pipe unavailable", "err", err)
		return
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: 0}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, wake[0], &ev); err != nil {
		syscall.Close(epfd)
		syscall.Close(wake[0])
		syscall.Close(wake[1])
		b.log.Warn("idle connections keep their goroutine: epoll unavailable", "err", err)
		return
	}
	p := &parker{epfd: epfd, wakeR: wake[0], wakeW: wake[1], byID: make(map[int32]*conn)}
	b.park = p
	b.wg.Add(2)
	go func() {
		defer b.wg.Done()
		<-b.ctx.Done()
		p.wake()
	}()
	go func() {
		defer b.wg.Done()
		events := make([]syscall.EpollEvent, 128)
		var drain [64]byte
		var due []parkedRef
		for b.ctx.Err() == nil {
			n, err := syscall.EpollWait(epfd, events, p.waitMillis())
			if err != nil && err != syscall.EINTR {
				b.log.Error("epoll wait failed; parked connections wake only on close", "err", err)
				return
			}
			for i := 0; i < n; i++ {
				id := events[i].Fd
				if id == 0 {
					for {
						if n, _ := syscall.Read(wake[0], drain[:]); n <= 0 {
							break
						}
					}
					continue // the loop condition and the timers decide
				}
				p.mu.Lock()
				c := p.byID[id]
				p.mu.Unlock()
				if c != nil {
					c.unpark(id, false)
				}
			}
			due = p.due(time.Now().UnixNano(), due[:0])
			for i, r := range due {
				r.c.onTimer(r.id)
				due[i] = parkedRef{}
			}
		}
	}()
}

// closeParker releases the epoll set once every connection has ended
// (Broker.Close, after its wait group): until then a connection may still
// register with it, and a closed descriptor's number could already belong
// to something else.
func (b *Broker) closeParker() {
	if p := b.park; p != nil {
		syscall.Close(p.epfd)
		syscall.Close(p.wakeR)
		syscall.Close(p.wakeW)
	}
}

// parkedRef names one parking of a connection: the connection may have
// woken and parked again (a new id) since it was picked.
type parkedRef struct {
	c  *conn
	id int32
}

// wake interrupts epoll_wait. A full pipe already does.
func (p *parker) wake() { syscall.Write(p.wakeW, []byte{0}) }

// maxEpollWait bounds each epoll_wait even when no timer is due. Work the
// kernel defers to the waiting thread (the final release of a socket that
// epoll_wait held while it was closed elsewhere) runs when the call
// returns; closeSocket avoids that case, and this bound keeps anything
// like it from lasting more than a second.
const maxEpollWait = time.Second

// waitMillis is how long epoll_wait may sleep: until the earliest timer,
// and no longer than maxEpollWait.
func (p *parker) waitMillis() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := int64(maxEpollWait)
	if len(p.timers) > 0 {
		d = min(d, p.timers[0].parkDeadline-time.Now().UnixNano())
	}
	if d <= 0 {
		return 0
	}
	return int((d + int64(time.Millisecond) - 1) / int64(time.Millisecond))
}

// due removes the connections whose timer has come and appends them to out.
func (p *parker) due(now int64, out []parkedRef) []parkedRef {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.timers) > 0 && p.timers[0].parkDeadline <= now {
		c := heap.Pop(&p.timers).(*conn)
		out = append(out, parkedRef{c, c.parkID})
	}
	return out
}

// setTimerLocked (re)schedules c's deadline after it changed, and reports
// whether it is now the earliest. Caller holds p.mu.
func (p *parker) setTimerLocked(c *conn) bool {
	if c.parkDeadline == 0 {
		if c.heapIdx >= 0 {
			heap.Remove(&p.timers, int(c.heapIdx))
		}
		return false
	}
	if c.heapIdx >= 0 {
		heap.Fix(&p.timers, int(c.heapIdx))
	} else {
		heap.Push(&p.timers, c)
	}
	return c.heapIdx == 0
}

// park registers c for a wake-up and reports whether it did; the caller's
// goroutine then returns. deadline (zero: none) wakes it with a timeout
// (keep-alive, or the connect timeout before CONNECT).
func (c *conn) park(deadline time.Time) bool {
	p := c.b.park
	if p == nil || !c.parkable {
		return false
	}
	c.parkMu.Lock()
	defer c.parkMu.Unlock()
	c.outMu.Lock()
	closed := c.closed
	c.outMu.Unlock()
	if closed {
		return false
	}
	if c.ready.Load() && !c.released {
		// Not before CONNECT: a connection waiting for it is about to be
		// busy, and a connection storm should not pay for releasing.
		c.release()
	}
	p.mu.Lock()
	p.next++
	if p.next <= 0 {
		p.next = 1 // 0 is the wake pipe
	}
	id := p.next
	p.byID[id] = c
	p.mu.Unlock()
	if !c.arm(id) {
		p.mu.Lock()
		delete(p.byID, id)
		p.mu.Unlock()
		return false
	}
	c.parked = true
	c.parkID = id
	c.parkTimedOut = false
	c.parkedAt = time.Now().UnixNano()
	c.parkDeadline = 0
	if !deadline.IsZero() {
		c.parkDeadline = deadline.UnixNano()
	}
	p.mu.Lock()
	first := p.setTimerLocked(c)
	p.mu.Unlock()
	if first {
		p.wake()
	}
	return true
}

// arm registers c.fd in the epoll set for one wake-up as id. Caller holds
// parkMu.
func (c *conn) arm(id int32) bool {
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: id}
	op := syscall.EPOLL_CTL_MOD
	if !c.epollArmed {
		op = syscall.EPOLL_CTL_ADD
	}
	if err := syscall.EpollCtl(c.b.park.epfd, op, int(c.fd), &ev); err != nil {
		return false
	}
	c.epollArmed = true
	return true
}

// disarm takes c.fd out of the epoll set before the descriptor changes.
// Caller holds parkMu.
func (c *conn) disarm() {
	if c.epollArmed {
		_ = syscall.EpollCtl(c.b.park.epfd, syscall.EPOLL_CTL_DEL, int(c.fd), nil)
		c.epollArmed = false
	}
}

// unpark resumes a connection parked as id (data arrived, it was closed,
// or its deadline passed); id 0 means whatever parking is current.
func (c *conn) unpark(id int32, timeout bool) {
	if c.b.park == nil {
		return
	}
	c.parkMu.Lock()
	ok := c.unparkLocked(id, timeout)
	c.parkMu.Unlock()
	if ok {
		go c.resume()
	}
}

// unparkLocked ends the parking and reports whether the caller must start
// the goroutine that resumes the connection. Caller holds parkMu.
func (c *conn) unparkLocked(id int32, timeout bool) bool {
	if !c.parked || id != 0 && id != c.parkID {
		return false
	}
	c.parked = false
	c.parkTimedOut = timeout
	p := c.b.park
	p.mu.Lock()
	delete(p.byID, c.parkID)
	c.parkDeadline = 0
	p.setTimerLocked(c)
	p.mu.Unlock()
	return true
}

// onTimer resumes the connection of parking id, past its deadline.
func (c *conn) onTimer(id int32) {
	c.parkMu.Lock()
	ok := c.parkDeadline != 0 && time.Now().UnixNano() >= c.parkDeadline && c.unparkLocked(id, true)
	c.parkMu.Unlock()
	if ok {
		go c.resume()
	}
}

// dupFD duplicates a descriptor (close-on-exec, as Go opens them).
func dupFD(fd int) (int, error) {
	nfd, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_DUPFD_CLOEXEC, 0)
	if errno != 0 {
		return -1, errno
	}
	return int(nfd), nil
}

// release replaces the connection's net.Conn by a duplicate of its
// descriptor. It does nothing when output is pending or the duplicate
// cannot be made. Caller holds parkMu; the read loop is parking.
func (c *conn) release() {
	nfd, err := dupFD(int(c.fd))
	if err != nil {
		return
	}
	c.outMu.Lock()
	if c.closed || c.writing || len(c.out) > 0 {
		c.outMu.Unlock()
		syscall.Close(nfd)
		return
	}
	old := c.nc
	c.nc = nil
	c.released = true
	c.out, c.spare = nil, nil // empty; a released connection holds no buffers
	c.outMu.Unlock()
	c.disarm()
	_ = old.Close()
	c.fd = int32(nfd)
}

// isReleased reports whether the connection is without a net.Conn.
func (c *conn) isReleased() bool {
	c.parkMu.Lock()
	defer c.parkMu.Unlock()
	return c.released
}

// wasIdle reports whether the connection had been parked for at least
// parkAfter before it last woke: it is worth keeping released. Read loop
// only.
func (c *conn) wasIdle() bool {
	return time.Now().UnixNano()-c.parkedAt >= int64(parkAfter)
}

// rawRead reads the socket's descriptor without blocking: a released
// connection's, or, while the read loop polls (pollAcks, readMore), the one
// under its net.Conn. It returns errWouldBlock when there is nothing to read, or when
// a released connection has its net.Conn again. Holding parkMu keeps
// closeSocket from closing the descriptor under the read.
func (c *conn) rawRead(b []byte) (int, error) {
	c.parkMu.Lock()
	defer c.parkMu.Unlock()
	if c.sockClosed {
		return 0, net.ErrClosed
	}
	if !c.released && !c.pollMode {
		return 0, errWouldBlock
	}
	for {
		n, err := syscall.Read(int(c.fd), b)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return 0, errWouldBlock
		case err != nil:
			return 0, &net.OpError{Op: "read", Net: "tcp", Addr: c.info.Remote, Err: os.NewSyscallError("read", err)}
		case n == 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

// rawWrite writes b to a released connection's socket without blocking.
// What the socket does not take must wait: it returns the net.Conn, made
// again, to write the rest with. nc is nil when everything was written.
func (c *conn) rawWrite(b []byte) (n int, nc net.Conn, err error) {
	c.parkMu.Lock()
	defer c.parkMu.Unlock()
	if c.sockClosed {
		return 0, nil, net.ErrClosed
	}
	if !c.released {
		return 0, c.nc, nil
	}
	for n < len(b) {
		m, err := syscall.Write(int(c.fd), b[n:])
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			nc, err := c.restoreLocked()
			return n, nc, err
		case err != nil:
			return n, nil, &net.OpError{Op: "write", Net: "tcp", Addr: c.info.Remote, Err: os.NewSyscallError("write", err)}
		}
		n += m
	}
	return n, nil, nil
}

// restore gives a released connection a net.Conn again and returns it.
func (c *conn) restore() (net.Conn, error) {
	c.parkMu.Lock()
	defer c.parkMu.Unlock()
	return c.restoreLocked()
}

// restoreLocked is restore with parkMu held. While the read loop is parked
// the new descriptor takes the old one's place in the epoll set.
func (c *conn) restoreLocked() (net.Conn, error) {
	if !c.released {
		return c.nc, nil
	}
	if c.sockClosed {
		return nil, net.ErrClosed
	}
	// net.FileConn duplicates the descriptor of the file it is given; the
	// kept descriptor stays ours until the new connection exists.
	dup, err := dupFD(int(c.fd))
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(dup), "mqtt")
	nc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, err
	}
	c.disarm()
	syscall.Close(int(c.fd))
	c.fd = int32(parkableFD(nc))
	c.outMu.Lock()
	c.nc = nc
	c.released = false
	c.outMu.Unlock()
	c.b.restores.Add(1)
	if c.parked && !c.arm(c.parkID) {
		// The read loop is parked but its socket cannot be watched: it
		// resumes with a goroutine of its own.
		if c.unparkLocked(c.parkID, false) {
			go c.resume()
		}
	}
	return nc, nil
}

// closeSocket closes the connection's socket, whichever form it has.
//
// The socket leaves the epoll set before its descriptor is closed. Closing
// the last descriptor would remove it too, but when an epoll_wait is
// looking at the socket at that moment, the socket can be released only
// once that epoll_wait returns: FuzzSession found clients left without a
// FIN, their socket in CLOSE-WAIT with no descriptor, while the parker
// slept in epoll_wait (Linux 6.18).
func (c *conn) closeSocket() {
	c.parkMu.Lock()
	defer c.parkMu.Unlock()
	if c.sockClosed {
		return
	}
	c.disarm()
	c.sockClosed = true
	if c.released {
		if c.linger.Load() {
			// A net.Conn of its own (a duplicate) to linger on.
			f := os.NewFile(uintptr(c.fd), "")
			nc, err := net.FileConn(f)
			f.Close()
			if err == nil {
				lingerClose(nc)
			}
			return
		}
		syscall.Close(int(c.fd))
		return
	}
	if c.linger.Load() {
		lingerClose(c.nc)
		return
	}
	_ = c.nc.Close()
}

// readMore reads once more, without blocking, when the batch just handled
// has used up what the last read returned. Packets that arrived meanwhile
// join the batch, so their acknowledgements and deliveries leave in the
// same writes: a busy publisher's PUBACKs in one write instead of one per
// read (qos1: +15%, 13% less broker CPU per message). It reports whether it
// read anything.
func (c *conn) readMore() (bool, error) {
	c.pollMode = true
	err := c.r.Fill()
	c.pollMode = false
	if err == errWouldBlock {
		return false, nil
	}
	return err == nil, err
}

// ackPoll is how long a read loop polls for acknowledgements that a
// backlog waits for before it blocks in the runtime's poller.
const ackPoll = 100 * time.Microsecond

// awaitingAcks reports whether messages wait in the session's queue for
// window slots that only the client's acknowledgements can free.
func (c *conn) awaitingAcks() bool {
	s := c.sess
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queue.len() > 0 && len(s.inflight) > 0
}

// pollAcks polls the socket for up to ackPoll, yielding the processor
// between tries, and reports whether something arrived. A subscriber whose
// window is full holds up every publisher feeding it, and waking it
// through the poller costs tens of microseconds (more on a virtual
// machine) on every round trip of the window. At most half the processors
// poll at once, so polling never takes the machine.
func (c *conn) pollAcks() (bool, error) {
	b := c.b
	if b.polling.Add(1) > b.maxPolling {
		b.polling.Add(-1)
		return false, nil
	}
	defer b.polling.Add(-1)
	b.ackPolls.Add(1)
	until := time.Now().Add(ackPoll)
	for {
		runtime.Gosched()
		c.pollMode = true
		err := c.r.Fill()
		c.pollMode = false
		switch {
		case err == nil:
			return true, nil
		case err != errWouldBlock:
			return false, err
		case !time.Now().Before(until) || !c.awaitingAcks():
			return false, nil
		}
	}
}
