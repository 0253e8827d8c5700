package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/certwright/certwright/internal/recovery"
)

// supervise runs loop, a background loop of the server, until it returns.
// A panic in it is logged with its stack and the loop restarted after a
// pause (1s doubling to a minute), so one bad record never takes the
// process down, and CRL and OCSP serving with it.
func (a *App) supervise(ctx context.Context, loop func() error) error {
	pause := time.Second
	for {
		err := recovery.Call(loop)
		pe, ok := errors.AsType[*recovery.PanicError](err)
		if !ok {
			return err
		}
		a.log.Error("background loop panicked; restarting it", "panic", fmt.Sprint(pe.Value), "stack", string(pe.Stack), "restart_in", pause)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(pause):
		}
		pause = min(2*pause, time.Minute)
	}
}

// recoverHTTP answers a request whose handler panicked with a 500 and logs
// the panic with its stack. net/http would only log it and drop the
// connection, which a client reads as a network failure.
func recoverHTTP(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rw := &wroteWriter{ResponseWriter: w}
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler { //nolint:errorlint // the sentinel is compared as net/http does
				panic(v)
			}
			log.Error("HTTP handler panicked; answered 500", "method", r.Method, "path", r.URL.Path,
				"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			if rw.wrote {
				// Too late for a status: end the response abruptly.
				panic(http.ErrAbortHandler)
			}
			rw.Header().Set("Content-Type", "application/json")
			rw.Header().Del("Content-Length")
			rw.WriteHeader(http.StatusInternalServerError)
			_, _ = rw.Write([]byte(`{"error":"internal error","detail":"the server failed to complete the request; see its log"}` + "\n"))
		}()
		next.ServeHTTP(rw, r)
	})
}

// wroteWriter notes whether a response has started.
type wroteWriter struct {
	http.ResponseWriter
	wrote bool
}

func (w *wroteWriter) WriteHeader(code int) {
	if code >= 200 {
		w.wrote = true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *wroteWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *wroteWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
