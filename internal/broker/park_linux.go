//go:build linux

package broker

import (
	"errors"
	"net"
	"sync"
	"syscall"
	"time"
)

// Parking keeps idle plain connections without a goroutine: after
// parkAfter of silence the read loop registers the socket in an epoll set of
// the broker's own and returns; when the socket becomes readable (or is
// closed, or the keep-alive deadline passes) a new goroutine resumes the
// loop. A goroutine's stack is most of what an idle Go connection costs;
// Mosquitto, in C, holds well under a kilobyte. TLS and WebSocket
// connections keep their goroutine: their readers may hold decrypted bytes
// that the socket no longer shows.

// parkAfter is how long a connection must be silent before it parks.
const parkAfter = time.Second

var errParked = errors.New("connection parked")

// parker owns the epoll set and the goroutine that waits on it.
type parker struct {
	epfd int
	mu   sync.Mutex
	next int32
	byID map[int32]*conn
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
	// closes.
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
	p := &parker{epfd: epfd, byID: make(map[int32]*conn)}
	b.park = p
	b.wg.Add(2)
	go func() {
		defer b.wg.Done()
		<-b.ctx.Done()
		syscall.Write(wake[1], []byte{0})
	}()
	go func() {
		defer b.wg.Done()
		defer func() {
			syscall.Close(epfd)
			syscall.Close(wake[0])
			syscall.Close(wake[1])
		}()
		events := make([]syscall.EpollEvent, 128)
		for b.ctx.Err() == nil {
			n, err := syscall.EpollWait(epfd, events, -1)
			if err != nil {
				if err == syscall.EINTR {
					continue
				}
				b.log.Error("epoll wait failed; parked connections wake only on close or keep-alive", "err", err)
				return
			}
			for i := 0; i < n; i++ {
				if events[i].Fd == 0 {
					continue // the wake pipe: the loop condition decides
				}
				p.mu.Lock()
				c := p.byID[events[i].Fd]
				p.mu.Unlock()
				if c != nil {
					c.unpark(false)
				}
			}
		}
	}()
}

// park registers c for a wake-up and reports whether it did; the caller's
// goroutine then returns. kaDeadline (zero: none) wakes it with a
// keep-alive timeout.
func (c *conn) park(kaDeadline time.Time) bool {
	p := c.b.park
	if p == nil || c.fd < 0 {
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
	p.mu.Lock()
	p.next++
	if p.next <= 0 {
		p.next = 1 // 0 is the wake pipe
	}
	id := p.next
	p.byID[id] = c
	p.mu.Unlock()
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: id}
	op := syscall.EPOLL_CTL_MOD
	if !c.epollArmed {
		op = syscall.EPOLL_CTL_ADD
	}
	if err := syscall.EpollCtl(p.epfd, op, c.fd, &ev); err != nil {
		p.mu.Lock()
		delete(p.byID, id)
		p.mu.Unlock()
		return false
	}
	c.epollArmed = true
	c.parked = true
	c.parkID = id
	c.parkTimedOut = false
	if !kaDeadline.IsZero() {
		c.parkTimer = time.AfterFunc(time.Until(kaDeadline), func() { c.unparkTimeout() })
	}
	return true
}

// unpark resumes a parked connection (data arrived, or it was closed).
func (c *conn) unpark(timeout bool) {
	p := c.b.park
	if p == nil {
		return
	}
	c.parkMu.Lock()
	if !c.parked {
		c.parkMu.Unlock()
		return
	}
	c.parked = false
	if c.parkTimer != nil {
		c.parkTimer.Stop()
		c.parkTimer = nil
	}
	c.parkTimedOut = timeout
	p.mu.Lock()
	delete(p.byID, c.parkID)
	p.mu.Unlock()
	c.parkMu.Unlock()
	go c.resume()
}

func (c *conn) unparkTimeout() { c.unpark(true) }
