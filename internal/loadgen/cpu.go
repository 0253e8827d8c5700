package loadgen

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// userHZ is the unit of the CPU times in /proc: USER_HZ, 100 on every
// Linux architecture Go supports.
const userHZ = 100

// CPU is the CPU time spent during the measured phase, read from /proc.
type CPU struct {
	ServerPID int `json:"server_pid"`
	// ServerSeconds is the server process's user + system time.
	ServerSeconds float64 `json:"server_seconds"`
	// ServerMSPerCert is ServerSeconds per certificate issued;
	// ServerMSPerRequest per request answered, refusals included.
	ServerMSPerCert    float64 `json:"server_ms_per_cert"`
	ServerMSPerRequest float64 `json:"server_ms_per_request"`
	// LoadgenSeconds is this process's own time.
	LoadgenSeconds float64 `json:"loadgen_seconds"`
	// OtherSeconds is every other process's (and the kernel's) busy time
	// on the machine, from /proc/stat: a noisy machine shows here.
	OtherSeconds float64 `json:"other_seconds"`
	// MachineBusySeconds is the whole machine's busy time.
	MachineBusySeconds float64 `json:"machine_busy_seconds"`
}

// cpuSample holds CPU times in ticks.
type cpuSample struct {
	server, self, machine uint64
}

func sampleCPU(pid int) (cpuSample, error) {
	var s cpuSample
	var err error
	if s.server, err = processTicks(strconv.Itoa(pid)); err != nil {
		return s, fmt.Errorf("loadgen: server CPU (needs Linux /proc): %w", err)
	}
	if s.self, err = processTicks("self"); err != nil {
		return s, fmt.Errorf("loadgen: own CPU: %w", err)
	}
	if s.machine, err = machineBusyTicks(); err != nil {
		return s, fmt.Errorf("loadgen: machine CPU: %w", err)
	}
	return s, nil
}

func cpuBetween(pid int, before, after cpuSample, certs, requests int) *CPU {
	sec := func(a, b uint64) float64 {
		if b < a {
			return 0
		}
		return float64(b-a) / userHZ
	}
	c := &CPU{
		ServerPID:          pid,
		ServerSeconds:      sec(before.server, after.server),
		LoadgenSeconds:     sec(before.self, after.self),
		MachineBusySeconds: sec(before.machine, after.machine),
	}
	c.OtherSeconds = max(0, c.MachineBusySeconds-c.ServerSeconds-c.LoadgenSeconds)
	if certs > 0 {
		c.ServerMSPerCert = c.ServerSeconds * 1000 / float64(certs)
	}
	if requests > 0 {
		c.ServerMSPerRequest = c.ServerSeconds * 1000 / float64(requests)
	}
	return c
}

// processTicks is utime + stime of /proc/<pid>/stat (proc(5)): fields 14
// and 15, counted after the command name, which may hold spaces.
func processTicks(pid string) (uint64, error) {
	data, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, err
	}
	return parseProcessTicks(data)
}

func parseProcessTicks(data []byte) (uint64, error) {
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, fmt.Errorf("unexpected /proc stat line %q", data)
	}
	// After "pid (comm) ": field 3 (state) is at index 0.
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc stat line %q", data)
	}
	var total uint64
	for _, s := range f[11:13] {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc stat field %q: %w", s, err)
		}
		total += v
	}
	return total, nil
}

// machineBusyTicks is every CPU's non-idle time from the "cpu" line of
// /proc/stat: user, nice, system, irq, softirq and steal (guest time is
// already in user).
func machineBusyTicks() (uint64, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	return parseMachineBusy(data)
}

func parseMachineBusy(data []byte) (uint64, error) {
	line, _, _ := bytes.Cut(data, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 9 || f[0] != "cpu" {
		return 0, fmt.Errorf("unexpected /proc/stat first line %q", line)
	}
	var total uint64
	// user nice system idle iowait irq softirq steal: skip idle and iowait.
	for _, k := range []int{1, 2, 3, 6, 7, 8} {
		v, err := strconv.ParseUint(f[k], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat field %q: %w", f[k], err)
		}
		total += v
	}
	return total, nil
}

// CheckPID reports whether the CPU time of process pid can be read.
func CheckPID(pid int) error {
	if _, err := sampleCPU(pid); err != nil {
		return err
	}
	return nil
}
