// Package proc reads what the benchmarks report of a process they run
// (Linux /proc) and gives them the little they share: a free port, the
// end of a log, a Kafka broker.
package proc

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// PeakRSS is the process's peak resident set (VmHWM), in bytes.
func PeakRSS(pid int) (int64, error) { return status(pid, "VmHWM") }

// RSS is the process's resident set now (VmRSS), in bytes.
func RSS(pid int) (int64, error) { return status(pid, "VmRSS") }

// status reads a field in kB of /proc/<pid>/status, in bytes.
func status(pid int, field string) (int64, error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// clockTicks is USER_HZ, 100 on every Linux platform Go supports.
const clockTicks = 100

// CPUTime is the process's user plus system CPU time so far.
func CPUTime(pid int) (time.Duration, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which ends with the last ')': state
	// is field 3, utime 14 and stime 15.
	i := bytes.LastIndexByte(stat, ')')
	fields := strings.Fields(string(stat[i+1:]))
	if len(fields) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// FreeAddr returns a loopback address with a free port.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// Tail returns the end of a log file.
func Tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// LoadAvg is the machine's 1, 5 and 15 minute load averages, "?" when
// unknown: every figure a bench prints goes with it.
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// Step prints a bench's progress line, with the time, to standard error.
func Step(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// Kafka starts a one-broker kfake cluster in this process and returns its
// address and a func that stops it. Its records stay in this process's
// memory, not cdcd's.
func Kafka() (broker string, stop func(), err error) {
	k, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		return "", nil, fmt.Errorf("start kfake: %w", err)
	}
	return k.ListenAddrs()[0], k.Close, nil
}

// KafkaConfig is the kafka section of a cdcd config for broker, every
// topic and consumer group named after prefix.
func KafkaConfig(broker, prefix string) string {
	return fmt.Sprintf("kafka:\n  brokers: [%q]\n  topic_prefix: %s\n", broker, prefix)
}

// TreeCPUTime is the user plus system CPU time of process pid, of its
// children that ended (once reaped) and of those still running: for a
// Postgres postmaster, the server's CPU time, backends included.
func TreeCPUTime(pid int) (time.Duration, error) {
	self, err := statFields(pid)
	if err != nil {
		return 0, err
	}
	ticks := int64(0)
	for _, f := range self[11:15] { // utime, stime, cutime, cstime
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, err
		}
		ticks += n
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	parent := strconv.Itoa(pid)
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil || child == pid {
			continue
		}
		f, err := statFields(child)
		if err != nil || f[1] != parent { // gone meanwhile, or not a child
			continue
		}
		u, err1 := strconv.ParseInt(f[11], 10, 64)
		s, err2 := strconv.ParseInt(f[12], 10, 64)
		if err1 == nil && err2 == nil {
			ticks += u + s
		}
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// ServerCPU returns the postmaster of Postgres backend process backend
// and the server's CPU time so far (TreeCPUTime), or 0, 0 when /proc does
// not tell.
func ServerCPU(backend int) (postmaster int, cpu time.Duration) {
	postmaster, err := ParentPID(backend)
	if err != nil {
		return 0, 0
	}
	if cpu, err = TreeCPUTime(postmaster); err != nil {
		return 0, 0
	}
	return postmaster, cpu
}

// ParentPID is the parent of process pid.
func ParentPID(pid int) (int, error) {
	f, err := statFields(pid)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(f[1])
}

// statFields are the fields of /proc/pid/stat after the command name:
// state is [0], ppid [1], utime [11], stime [12], cutime [13], cstime [14].
func statFields(pid int) ([]string, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	i := bytes.LastIndexByte(stat, ')')
	fields := strings.Fields(string(stat[i+1:]))
	if len(fields) < 15 {
		return nil, fmt.Errorf("short /proc/%d/stat", pid)
	}
	return fields, nil
}
