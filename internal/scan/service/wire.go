package service

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"time"
)

// Bounds on what a peer can make us read. Every reader in this package
// stops at one of these; nothing reads "until the peer is done".
const (
	maxLine       = 4096     // one text line (SMTP allows 512, IMAP servers go longer)
	maxReplyLines = 128      // lines in one multi-line reply
	maxReplyBytes = 32 << 10 // bytes in one multi-line reply
	maxPacket     = 64 << 10 // one binary message (LDAP, AMQP frame, MySQL packet, NATS INFO)
	maxShown      = 160      // bytes of peer text kept in a Result or a message
	bannerPeek    = 64       // bytes looked at to recognise a banner
	readBufSize   = 4096     // bufio buffer under each connection
	pastDeadline  = 1        // Unix second used to abort blocked I/O on cancellation
	closeTimeout  = time.Second
)

// errTooLong reports a peer line or message over one of the bounds above.
var errTooLong = errors.New("service: peer sent more than the size limit")

// errDataAfterUpgrade reports bytes that arrived after the server agreed to
// start TLS and before the ClientHello: the classic STARTTLS command
// injection (CVE-2011-0411); the connection cannot be trusted.
var errDataAfterUpgrade = errors.New("service: server sent data after agreeing to start TLS; refusing the connection")

// wire is one connection with bounded, deadline-guarded reads and writes.
type wire struct {
	conn    net.Conn
	r       *bufio.Reader
	ctx     context.Context
	timeout time.Duration
	stop    func() bool
}

func newWire(ctx context.Context, conn net.Conn, timeout time.Duration) *wire {
	w := &wire{conn: conn, r: bufio.NewReaderSize(conn, readBufSize), ctx: ctx, timeout: timeout}
	// Cancelling ctx unblocks any read or write in progress.
	w.stop = context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(pastDeadline, 0)) })
	return w
}

// arm sets the deadline for the next exchange: d from now, never past ctx.
func (w *wire) arm(d time.Duration) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	dl := time.Now().Add(d)
	if cd, ok := w.ctx.Deadline(); ok && cd.Before(dl) {
		dl = cd
	}
	if err := w.conn.SetDeadline(dl); err != nil {
		return err
	}
	// The AfterFunc may have fired between the check and SetDeadline.
	if err := w.ctx.Err(); err != nil {
		_ = w.conn.SetDeadline(time.Unix(pastDeadline, 0))
		return err
	}
	return nil
}

func (w *wire) close() {
	w.stop()
	_ = w.conn.SetDeadline(time.Now().Add(closeTimeout))
	_ = w.conn.Close()
}

func (w *wire) write(p []byte) error {
	if err := w.arm(w.timeout); err != nil {
		return err
	}
	_, err := w.conn.Write(p)
	return err
}

func (w *wire) writeString(s string) error { return w.write([]byte(s)) }

// waitBanner waits up to d for the peer to send something first. It reports
// false (and no error) when the peer stayed silent; the connection stays usable.
func (w *wire) waitBanner(d time.Duration) (bool, error) {
	if err := w.arm(d); err != nil {
		return false, err
	}
	if _, err := w.r.Peek(1); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) && w.ctx.Err() == nil {
			return false, nil
		}
		return false, err
	}
	// Give the rest of the first segment a moment to arrive, bounded.
	if err := w.arm(w.timeout); err != nil {
		return true, err
	}
	for w.r.Buffered() < bannerPeek && !bytes.Contains(w.peekBuffered(bannerPeek), []byte("\n")) {
		before := w.r.Buffered()
		if err := w.conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
			break
		}
		if _, err := w.r.Peek(before + 1); err != nil {
			break
		}
	}
	return true, nil
}

// peekBuffered returns up to n already-received bytes without consuming them.
func (w *wire) peekBuffered(n int) []byte {
	n = min(n, w.r.Buffered())
	b, _ := w.r.Peek(n)
	return b
}

// readLine reads one line of at most max bytes and returns it without CRLF.
func (w *wire) readLine(max int) ([]byte, error) {
	if err := w.arm(w.timeout); err != nil {
		return nil, err
	}
	var line []byte
	for {
		chunk, err := w.r.ReadSlice('\n')
		if len(line)+len(chunk) > max+2 {
			return nil, fmt.Errorf("%w: line over %d bytes", errTooLong, max)
		}
		line = append(line, chunk...)
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if errors.Is(err, io.EOF) && len(line) > 0 {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	line = bytes.TrimSuffix(line, []byte("\n"))
	return bytes.TrimSuffix(line, []byte("\r")), nil
}

// readFull reads exactly n bytes; the caller has checked n against a bound.
func (w *wire) readFull(n int) ([]byte, error) {
	if n < 0 || n > maxPacket {
		return nil, fmt.Errorf("%w: message of %d bytes", errTooLong, n)
	}
	if err := w.arm(w.timeout); err != nil {
		return nil, err
	}
	b := make([]byte, n)
	_, err := io.ReadFull(w.r, b)
	return b, err
}

// detach hands the raw connection over, at the point where a ClientHello
// goes next: no buffered peer bytes, no deadline, no cancellation hook.
func (w *wire) detach() (net.Conn, error) {
	w.stop()
	if w.r.Buffered() > 0 {
		_ = w.conn.Close()
		return nil, errDataAfterUpgrade
	}
	if err := w.conn.SetDeadline(time.Time{}); err != nil {
		_ = w.conn.Close()
		return nil, err
	}
	return w.conn, nil
}

// bufConn reads through the wire's buffer so that bytes already peeked are
// not lost when another layer (crypto/tls) takes over the connection, and
// keeps the first bytes the server sent for sniffing.
type bufConn struct {
	net.Conn
	r     io.Reader
	first []byte
}

func (c *bufConn) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if keep := min(n, bannerPeek-len(c.first)); keep > 0 {
		c.first = append(c.first, p[:keep]...)
	}
	return n, err
}

// shown renders peer bytes for a person: printable ASCII only, escapes for
// everything else, at most maxShown bytes of input.
func shown(b []byte) string {
	cut := len(b) > maxShown
	if cut {
		b = b[:maxShown]
	}
	q := strconv.QuoteToASCII(string(b))
	q = q[1 : len(q)-1]
	if cut {
		q += "..."
	}
	return q
}

// quoted is shown in double quotes, for use inside a sentence.
func quoted(b []byte) string { return `"` + shown(b) + `"` }
