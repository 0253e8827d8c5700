// Package recovery owns what happens when background work panics: the
// panic becomes an error carrying its stack, logged with slog, so one bad
// record cannot take down the process (and with it CRL and OCSP serving).
//
// Use Call where the caller records an outcome (a scheduled job's run),
// Do for one iteration of a background loop, and Go for a goroutine.
package recovery

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
)

// PanicError is a recovered panic.
type PanicError struct {
	Value any    // what was passed to panic
	Stack []byte // the panicking goroutine's stack
}

func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

// Call runs f and returns its error, or a *PanicError if f panicked.
func Call(f func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return f()
}

// Do runs f; a panic is logged (with its stack) as having happened in
// what, and Do returns normally. It reports whether f panicked.
func Do(log *slog.Logger, what string, f func()) (panicked bool) {
	err := Call(func() error { f(); return nil })
	if err != nil {
		Log(log, what, err)
		return true
	}
	return false
}

// CallLogged is Call for work whose failure its caller records: f's
// error is returned as is, and a panic is also logged with its stack (Log)
// before it is returned as a *PanicError.
func CallLogged(log *slog.Logger, what string, f func() error) error {
	err := Call(f)
	if _, ok := errors.AsType[*PanicError](err); ok {
		Log(log, what, err)
	}
	return err
}

// Go runs f in a new goroutine under Do.
func Go(log *slog.Logger, what string, f func()) {
	go Do(log, what, f)
}

// Log logs err at error level; a *PanicError in its chain is logged with
// its value and stack.
func Log(log *slog.Logger, what string, err error) {
	if log == nil {
		log = slog.Default()
	}
	if pe, ok := errors.AsType[*PanicError](err); ok {
		log.Error("recovered from a panic; carrying on", "in", what, "panic", fmt.Sprint(pe.Value), "stack", string(pe.Stack))
		return
	}
	log.Error("failed", "in", what, "err", err)
}
