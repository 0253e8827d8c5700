package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// stateFile is the name of the state file in state_dir.
const stateFile = "agent-state.json"

// savedState is what survives a restart: which deployed certificates
// still wait for a successful reload or check.
type savedState struct {
	Version int                   `json:"version"`
	Entries map[string]savedEntry `json:"entries,omitempty"`
}

type savedEntry struct {
	// PendingSerial was written to disk, but its reload or check has not
	// succeeded yet.
	PendingSerial string `json:"pending_serial,omitempty"`
	Failures      int    `json:"failures,omitempty"`
}

func (a *Agent) statePath() string { return filepath.Join(a.cfg.StateDir, stateFile) }

// loadState reads the state file, if state_dir is set and it exists.
func (a *Agent) loadState() error {
	if a.cfg.StateDir == "" {
		return nil
	}
	if err := os.MkdirAll(a.cfg.StateDir, 0o700); err != nil {
		return fmt.Errorf("agent: state_dir: %w", err)
	}
	b, err := readLimited(a.statePath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("agent: read state: %w", err)
	}
	var s savedState
	if err := json.Unmarshal(b, &s); err != nil {
		// A damaged state file only loses pending retries: say so and go on.
		a.log.Warn("agent state file unreadable; starting afresh", "path", a.statePath(), "err", err)
		return nil
	}
	for name, se := range s.Entries {
		if st := a.states[name]; st != nil {
			st.pending, st.failures = se.PendingSerial, se.Failures
		}
	}
	a.savedState = b
	return nil
}

// saveState writes the state file when it changed.
func (a *Agent) saveState() error {
	if a.cfg.StateDir == "" {
		return nil
	}
	s := savedState{Version: 1, Entries: map[string]savedEntry{}}
	for name, st := range a.states {
		if st.pending != "" || st.failures > 0 {
			s.Entries[name] = savedEntry{PendingSerial: st.pending, Failures: st.failures}
		}
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("agent: encode state: %w", err)
	}
	if bytes.Equal(b, a.savedState) {
		return nil
	}
	if err := writeFiles(a.fs, []fileSpec{{path: a.statePath(), data: b, mode: 0o600, uid: -1, gid: -1}}); err != nil {
		return fmt.Errorf("agent: save state: %w", err)
	}
	a.savedState = b
	return nil
}
