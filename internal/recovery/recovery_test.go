package recovery

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func TestCall(t *testing.T) {
	t.Parallel()
	want := errors.New("plain")
	if err := Call(func() error { return want }); !errors.Is(err, want) {
		t.Errorf("Call = %v, want the function's error", err)
	}
	err := Call(func() error {
		var m map[string]int
		m["x"]++
		return nil
	})
	pe, ok := errors.AsType[*PanicError](err)
	if !ok || !strings.Contains(pe.Error(), "nil map") || !bytes.Contains(pe.Stack, []byte("recovery_test.go")) {
		t.Fatalf("Call of a panicking function = %v", err)
	}
}

func TestDoLogsAndReturns(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	if Do(log, "step", func() {}) {
		t.Error("Do reported a panic for a function that did not panic")
	}
	if !Do(log, "step", func() { panic("bad record") }) {
		t.Error("Do did not report the panic")
	}
	if out := buf.String(); !strings.Contains(out, "bad record") || !strings.Contains(out, "in=step") || !strings.Contains(out, "goroutine") {
		t.Errorf("log = %s", out)
	}
}

func TestCallLoggedLogsPanicsOnly(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	want := errors.New("plain")
	if err := CallLogged(log, "step", func() error { return want }); !errors.Is(err, want) || buf.Len() != 0 {
		t.Fatalf("CallLogged of a failing function = %v, logged %q; want its error, nothing logged", err, buf.String())
	}
	err := CallLogged(log, "step", func() error { panic("boom") })
	if _, ok := errors.AsType[*PanicError](err); !ok {
		t.Fatalf("CallLogged of a panicking function = %v, want a *PanicError", err)
	}
	if out := buf.String(); !strings.Contains(out, "boom") || !strings.Contains(out, "recovery_test.go") {
		t.Errorf("panic not logged with its stack: %q", out)
	}
}
