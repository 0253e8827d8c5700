package loadgen

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// userHZ is the unit of the CPU times in /proc: USER_HZ, 100 on every
// Linux architecture Go supports.
const userHZ = 100

// CPU is the CPU time spent during the measured phase, read from /proc.
type CPU struct {
	// ServerPIDs are the server processes (several replicas: their sum).
	ServerPIDs []int `json:"server_pids"`
	// ServerSeconds is the server processes' user + system time.
	ServerSeconds float64 `json:"server_seconds"`
	// ServerContextSwitches counts the server threads' voluntary and
	// involuntary context switches (/proc/PID/task/*/status; a thread
	// that ended before the second sample is not counted, one started
	// after the first is counted in full); ServerSwitchesPerCert per
	// certificate. A
	// process that waits more often (less work in flight at once, more
	// processes sharing the cores) switches more per request.
	ServerContextSwitches uint64  `json:"server_context_switches"`
	ServerSwitchesPerCert float64 `json:"server_switches_per_cert"`
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

// cpuSample holds CPU times in ticks, and the servers' context switches
// by thread ("PID/TID").
type cpuSample struct {
	server, self, machine uint64
	switches              map[string]uint64
}

func sampleCPU(pids []int) (cpuSample, error) {
	s := cpuSample{switches: map[string]uint64{}}
	for _, pid := range pids {
		t, err := processTicks(strconv.Itoa(pid))
		if err != nil {
			return s, fmt.Errorf("loadgen: CPU of server process %d (needs Linux /proc): %w", pid, err)
		}
		s.server += t
		if err := threadSwitches(pid, s.switches); err != nil {
			return s, fmt.Errorf("loadgen: context switches of server process %d: %w", pid, err)
		}
	}
	var err error
	if s.self, err = processTicks("self"); err != nil {
		return s, fmt.Errorf("loadgen: own CPU: %w", err)
	}
	if s.machine, err = machineBusyTicks(); err != nil {
		return s, fmt.Errorf("loadgen: machine CPU: %w", err)
	}
	return s, nil
}

func cpuBetween(pids []int, before, after cpuSample, certs, requests int) *CPU {
	sec := func(a, b uint64) float64 {
		if b < a {
			return 0
		}
		return float64(b-a) / userHZ
	}
	c := &CPU{
		ServerPIDs:         pids,
		ServerSeconds:      sec(before.server, after.server),
		LoadgenSeconds:     sec(before.self, after.self),
		MachineBusySeconds: sec(before.machine, after.machine),
	}
	c.OtherSeconds = max(0, c.MachineBusySeconds-c.ServerSeconds-c.LoadgenSeconds)
	for tid, n := range after.switches {
		// A thread started since the first sample switched only since.
		if b := before.switches[tid]; n >= b {
			c.ServerContextSwitches += n - b
		}
	}
	if certs > 0 {
		c.ServerMSPerCert = c.ServerSeconds * 1000 / float64(certs)
		c.ServerSwitchesPerCert = float64(c.ServerContextSwitches) / float64(certs)
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

// threadSwitches adds the context switches of each thread of pid to by,
// keyed "PID/TID".
func threadSwitches(pid int, by map[string]uint64) error {
	dir := filepath.Join("/proc", strconv.Itoa(pid), "task")
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, t := range tasks {
		data, err := os.ReadFile(filepath.Join(dir, t.Name(), "status"))
		if err != nil {
			continue // the thread exited
		}
		n, err := parseSwitches(data)
		if err != nil {
			return err
		}
		by[strconv.Itoa(pid)+"/"+t.Name()] = n
	}
	return nil
}

// parseSwitches sums voluntary_ctxt_switches and nonvoluntary_ctxt_switches
// of a /proc status file.
func parseSwitches(data []byte) (uint64, error) {
	var total uint64
	found := 0
	for line := range strings.SplitSeq(string(data), "\n") {
		name, v, ok := strings.Cut(line, ":")
		if !ok || (name != "voluntary_ctxt_switches" && name != "nonvoluntary_ctxt_switches") {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc status %s %q: %w", name, v, err)
		}
		total += n
		found++
	}
	if found != 2 {
		return 0, fmt.Errorf("/proc status without context switch counts")
	}
	return total, nil
}

// CheckPIDs reports whether the CPU time of every process of pids can be
// read.
func CheckPIDs(pids []int) error {
	if _, err := sampleCPU(pids); err != nil {
		return err
	}
	return nil
}
