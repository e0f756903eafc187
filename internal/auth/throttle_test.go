package auth

import (
	"net/netip"
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time      { return c.t }
func (c *fakeClock) add(d time.Duration) { c.t = c.t.Add(d) }
func newTestThrottle() (*Throttle, *fakeClock) {
	c := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	th := NewThrottle()
	th.Now = c.now
	return th, c
}

func TestThrottleBackoff(t *testing.T) {
	th, _ := newTestThrottle()
	a := netip.MustParseAddr("192.0.2.1")
	want := []time.Duration{0, 0, 0, 250 * time.Millisecond, 500 * time.Millisecond, time.Second,
		2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}
	for i, w := range want {
		if got := th.Delay(a); got != w {
			t.Fatalf("attempt %d: Delay = %v, want %v", i+1, got, w)
		}
		th.Failure(a)
	}
	if d := th.Delay(netip.MustParseAddr("192.0.2.2")); d != 0 {
		t.Errorf("another address is delayed %v", d)
	}
}

func TestThrottleDecayAndSuccess(t *testing.T) {
	th, clk := newTestThrottle()
	a := netip.MustParseAddr("192.0.2.1")
	for range 5 {
		th.Failure(a)
	}
	if th.Delay(a) != time.Second {
		t.Fatalf("Delay after 5 failures = %v", th.Delay(a))
	}
	clk.add(30 * time.Second) // one failure forgiven
	if d := th.Delay(a); d != 500*time.Millisecond {
		t.Errorf("after one decay interval Delay = %v, want 500ms", d)
	}
	th.Success(a) // forgives one more, not all
	if d := th.Delay(a); d != 250*time.Millisecond {
		t.Errorf("after success Delay = %v, want 250ms", d)
	}
	clk.add(time.Hour)
	if d := th.Delay(a); d != 0 || th.Len() != 1 {
		t.Errorf("after an hour Delay = %v, len %d", d, th.Len())
	}
	th.Success(a)
	if th.Len() != 0 {
		t.Errorf("entry with no failures kept")
	}
}

func TestThrottleIPv6Prefix(t *testing.T) {
	th, _ := newTestThrottle()
	for i := range 4 {
		a := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i)})
		th.Failure(a)
	}
	if d := th.Delay(netip.MustParseAddr("2001:db8::ffff:1")); d == 0 {
		t.Error("addresses of one /64 not throttled together")
	}
	if d := th.Delay(netip.MustParseAddr("2001:db8:0:1::1")); d != 0 {
		t.Error("another /64 throttled")
	}
	th.Failure(netip.MustParseAddr("::ffff:192.0.2.9"))
	if th.Len() != 2 {
		t.Errorf("IPv4-mapped address not folded to IPv4: len %d", th.Len())
	}
}

func TestThrottleBounded(t *testing.T) {
	th, _ := newTestThrottle()
	th.MaxEntries = 100
	for i := range 1000 {
		th.Failure(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}))
	}
	if th.Len() != 100 {
		t.Errorf("Len = %d, want 100", th.Len())
	}
}
