//go:build !linux

package broker

import (
	"errors"
	"net"
	"time"
)

// Parking needs epoll; elsewhere every connection keeps its goroutine.

const parkAfter = time.Hour

var errParked = errors.New("connection parked")

var errWouldBlock = errors.New("would block")

type parker struct{}

func parkableFD(net.Conn) int { return -1 }

func (b *Broker) startParker() {}

func (b *Broker) closeParker() {}

func (c *conn) park(time.Time) bool { return false }

func (c *conn) unpark(int32, bool) {}

func (c *conn) restore() (net.Conn, error) { return c.nc, nil }

func (c *conn) closeSocket() {
	if c.linger.Load() {
		lingerClose(c.nc)
		return
	}
	_ = c.nc.Close()
}

func (c *conn) isReleased() bool { return false }

func (c *conn) awaitingAcks() bool { return false }

func (c *conn) pollAcks() (bool, error) { return false, nil }

func (c *conn) readMore() (bool, error) { return false, nil }

func (c *conn) wasIdle() bool { return false }

func (c *conn) rawRead([]byte) (int, error) { return 0, errors.New("no raw reads without epoll") }

func (c *conn) rawWrite([]byte) (int, net.Conn, error) { return 0, c.nc, nil }
