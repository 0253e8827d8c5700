package validatetest

import (
	"net"
	"sync"
	"testing"
)

// Tarpit accepts connections on ln and never answers them, as a target
// that holds a validation until its timeout does. The listener and every
// connection it accepted are closed when tb ends.
func Tarpit(tb testing.TB, ln net.Listener) {
	tb.Helper()
	var (
		mu    sync.Mutex
		conns []net.Conn
		done  = make(chan struct{})
	)
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed at cleanup
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	tb.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
}
