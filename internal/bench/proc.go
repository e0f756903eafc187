package bench

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

// clockTick is the unit of utime and stime in /proc/PID/stat. Linux fixes
// USER_HZ at 100 for user space on every architecture Go supports, and
// reading it with sysconf would need cgo.
const clockTick = 10 * time.Millisecond

// procCPU returns the CPU time (user + system, all threads) pid has used.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(b)
}

// parseStatCPU extracts utime+stime from the contents of /proc/PID/stat.
// The command name (field 2) may contain spaces and parentheses, so the
// fields are counted from the last ')'.
func parseStatCPU(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("/proc stat: no command name")
	}
	f := bytes.Fields(b[i+1:])
	// After the name: state(3) ppid(4) ... utime(14) stime(15).
	if len(f) < 13 {
		return 0, errors.New("/proc stat: too few fields")
	}
	ut, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	st, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc stat: %w", err)
	}
	return time.Duration(ut+st) * clockTick, nil
}

// procRSS returns the resident set size of pid in KiB (VmRSS).
func procRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return parseVmRSS(b)
}

// parseVmRSS extracts VmRSS (KiB) from the contents of /proc/PID/status.
func parseVmRSS(b []byte) (int64, error) {
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		rest, ok := bytes.CutPrefix(line, []byte("VmRSS:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) == 0 {
			break
		}
		return strconv.ParseInt(string(f[0]), 10, 64)
	}
	return 0, errors.New("/proc status: no VmRSS")
}

// selfCPU is the CPU time this process has used, to show how much of the
// machine the load generator itself took.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuMeter measures the CPU time of the broker (when its PID is known) and
// of this process over one phase of a run.
type cpuMeter struct {
	pid         int
	broker0     time.Duration
	self0       time.Duration
	brokerError error
}

func startCPU(pid int) *cpuMeter {
	m := &cpuMeter{pid: pid, self0: selfCPU()}
	if pid > 0 {
		m.broker0, m.brokerError = procCPU(pid)
	}
	return m
}

// stop returns the CPU time used since startCPU; broker is -1 when unknown.
func (m *cpuMeter) stop() (broker, self time.Duration, err error) {
	self = selfCPU() - m.self0
	if m.pid <= 0 {
		return -1, self, nil
	}
	if m.brokerError != nil {
		return -1, self, m.brokerError
	}
	b, err := procCPU(m.pid)
	if err != nil {
		return -1, self, err
	}
	return b - m.broker0, self, nil
}
