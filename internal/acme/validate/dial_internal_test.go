package validate

import (
	"errors"
	"net"
	"net/netip"
	"testing"
)

// TestDialChecksResolvedAddress: the deny list holds at connect time on the
// address actually dialled, whatever produced it (a second DNS answer, a
// rebinding resolver), IPv4-mapped form included.
func TestDialChecksResolvedAddress(t *testing.T) {
	t.Parallel()
	v, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	for _, a := range []string{"169.254.169.254", "::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe", "0.0.0.0"} {
		at := &attempt{}
		conn, err := v.dial(t.Context(), at, []netip.Addr{netip.MustParseAddr(a)}, port)
		if err == nil {
			conn.Close()
			t.Fatalf("dial %s succeeded", a)
		}
		e, ok := errors.AsType[*Error](err)
		if !ok || e.Type != typeRejectedIdentifier {
			t.Fatalf("dial %s: %v, want rejectedIdentifier", a, err)
		}
	}
	at := &attempt{}
	conn, err := v.dial(t.Context(), at, []netip.Addr{netip.MustParseAddr("127.0.0.1")}, port)
	if err != nil {
		t.Fatalf("dial loopback: %v", err)
	}
	conn.Close()
	if len(at.targets) != 1 || at.targets[0] != "127.0.0.1:"+itoa(port) {
		t.Fatalf("attempt recorded %v", at.targets)
	}
}

func itoa(p uint16) string {
	return netip.AddrPortFrom(netip.IPv4Unspecified(), p).String()[len("0.0.0.0:"):]
}
