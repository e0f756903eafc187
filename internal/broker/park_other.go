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

type parker struct{}

func parkableFD(net.Conn) int { return -1 }

func (b *Broker) startParker() {}

func (c *conn) park(time.Time) bool { return false }

func (c *conn) unpark(bool) {}
