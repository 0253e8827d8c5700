package store_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/ca"
	"github.com/certwright/certwright/internal/keys"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/store"
	"github.com/certwright/certwright/internal/store/storetest"
)

// tStallProxy forwards TCP connections to PostgreSQL and can stall one of
// them (found by the port its upstream side uses, which the server sees as
// client_port) or all of them, new ones included: what a silent network
// does to a connection.
type tStallProxy struct {
	ln  net.Listener
	all atomic.Bool
	mu  sync.Mutex
	// byPort holds each connection's stall switch by its upstream port.
	byPort map[int]*atomic.Bool
}

func tNewStallProxy(t *testing.T, target string) *tStallProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tStallProxy{ln: ln, byPort: map[int]*atomic.Bool{}}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			stalled := &atomic.Bool{}
			p.mu.Lock()
			p.byPort[s.LocalAddr().(*net.TCPAddr).Port] = stalled
			p.mu.Unlock()
			go p.pipe(s, c, stalled)
			go p.pipe(c, s, stalled)
		}
	}()
	return p
}

func (p *tStallProxy) pipe(dst, src net.Conn, stalled *atomic.Bool) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		for stalled.Load() || p.all.Load() {
			time.Sleep(10 * time.Millisecond)
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// stallPort stalls the connection whose upstream side uses port.
func (p *tStallProxy) stallPort(t *testing.T, port int) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.byPort[port]
	if s == nil {
		t.Fatalf("no proxied connection uses port %d", port)
	}
	s.Store(true)
}

// tBusStores opens two stores on one fresh schema: db reached through a
// stall proxy, and w directly (the other replica).
func tBusStores(t *testing.T) (db, w *store.DB, proxy *tStallProxy) {
	t.Helper()
	base := storetest.PostgresSchema(t, storetest.PostgresURL(t))
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	proxy = tNewStallProxy(t, u.Host)
	u.Host = proxy.ln.Addr().String()
	ctx := context.Background()
	if db, err = store.Open(ctx, u.String(), nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if w, err = store.Open(ctx, base, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	// A KEK of this test's own: the channel is the database's, and the
	// tests running beside it on other schemas must not be heard.
	kek := make([]byte, 32)
	_, _ = rand.Read(kek)
	for _, s := range []*store.DB{db, w} {
		if err := s.SetBusKey(kek); err != nil {
			t.Fatal(err)
		}
	}
	return db, w, proxy
}

// tCollector records the notices a listener hands its handler.
type tCollector struct {
	mu  sync.Mutex
	got []store.Notice
}

func (c *tCollector) handle(_ context.Context, n store.Notice) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got = append(c.got, n)
}

// has reports whether a notice matching f arrived.
func (c *tCollector) has(f func(store.Notice) bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.got {
		if f(n) {
			return true
		}
	}
	return false
}

// waitFor waits up to limit for a notice matching f, saying how long it took.
func (c *tCollector) waitFor(limit time.Duration, f func(store.Notice) bool) (time.Duration, bool) {
	start := time.Now()
	for time.Since(start) < limit {
		if c.has(f) {
			return time.Since(start), true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return limit, false
}

func revokedSerial(serial string) func(store.Notice) bool {
	return func(n store.Notice) bool {
		return n.Kind == store.NoticeRevoked && (n.All || strings.Contains(strings.Join(n.Serials, ","), serial))
	}
}

// tListen runs db's listener until the test ends, collecting what it
// hands its handler, and waits until it has listened and caught up once.
func tListen(t *testing.T, db *store.DB) *tCollector {
	t.Helper()
	c := &tCollector{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() { defer close(done); db.Listen(ctx, c.handle) }()
	for start := time.Now(); db.ListenerPID() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Since(start) > 10*time.Second {
			t.Fatal("the listener did not connect")
		}
	}
	time.Sleep(200 * time.Millisecond)
	return c
}

const tInsertRevocation = `INSERT INTO revocations (serial, ca_id, revoked_at, reason, revoked_by, not_after, ca)
	VALUES ($1, 'ca1', now(), 1, 'test', now() + interval '1 day', false)`

// TestListenerStalledConnection: a listener whose connection goes silent
// (no reset, no answer: a blackholed network path) notices within a few
// seconds, reconnects and catches up, so a revocation committed elsewhere
// meanwhile reaches it although the old connection stays stalled; with
// the database unreachable altogether the store reports the listener
// behind (readiness) within a few seconds, and once it is reachable again
// the revocations committed meanwhile arrive.
func TestListenerStalledConnection(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, w, proxy := tBusStores(t)
	c := tListen(t, db)
	raw := store.Write(w)

	// Stall the listener's connection only.
	var port int
	if err := raw.QueryRowContext(ctx, `SELECT client_port FROM pg_stat_activity WHERE pid = $1`, int64(db.ListenerPID())).Scan(&port); err != nil {
		t.Fatal(err)
	}
	proxy.stallPort(t, port)
	if _, err := raw.ExecContext(ctx, tInsertRevocation, "s1"); err != nil {
		t.Fatal(err)
	}
	if took, ok := c.waitFor(10*time.Second, revokedSerial("s1")); !ok {
		t.Errorf("with its connection stalled, the listener did not report a revocation committed elsewhere within %s (behind for %s)", took, db.BusBehindFor())
	} else {
		t.Logf("listener connection stalled: revocation reported after %s", took)
	}

	// Stall everything: the store must say so within a few seconds.
	proxy.all.Store(true)
	if _, err := raw.ExecContext(ctx, tInsertRevocation, "s2"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for db.BusBehindFor() <= 5*time.Second {
		if time.Since(start) > 10*time.Second {
			t.Errorf("database unreachable for %s, yet the listener is reported behind by only %s (/readyz stays ready)", time.Since(start), db.BusBehindFor())
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("database unreachable: reported behind by %s after %s", db.BusBehindFor(), time.Since(start))
	if c.has(revokedSerial("s2")) {
		t.Fatal("revocation s2 reported while the database was unreachable")
	}
	proxy.all.Store(false)
	if took, ok := c.waitFor(10*time.Second, revokedSerial("s2")); !ok {
		t.Errorf("revocation committed during the outage not reported %s after it ended", took)
	}
	if d := db.BusBehindFor(); d > 5*time.Second {
		t.Errorf("listener still reported behind by %s after recovering", d)
	}
}

// TestCatchUpXIDRegression: a catch-up finding the database's transaction
// IDs behind the previous snapshot's (a failover to an asynchronous
// standby, a point-in-time recovery, a restore into another cluster)
// cannot tell what it missed, so it signals a full resync and starts
// again from the current snapshot.
func TestCatchUpXIDRegression(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := store.Open(ctx, storetest.PostgresSchema(t, storetest.PostgresURL(t)), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := store.Write(db).ExecContext(ctx, tInsertRevocation, "x1"); err != nil {
		t.Fatal(err)
	}
	parts := strings.SplitN(store.BootSnapshot(db), ":", 3)
	xmin, err1 := strconv.ParseUint(parts[0], 10, 64)
	xmax, err2 := strconv.ParseUint(parts[1], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("snapshot %q", store.BootSnapshot(db))
	}
	// A previous snapshot from a future the database has not reached.
	prev := fmt.Sprintf("%d:%d:", xmin+1_000_000, xmax+1_000_000)
	c := &tCollector{}
	cur, err := store.CatchUpNotices(ctx, db, prev, c.handle)
	if err != nil {
		t.Fatal(err)
	}
	if !c.has(func(n store.Notice) bool { return n.Kind == store.NoticeResync }) {
		t.Errorf("catch-up after snapshot %s with the database at %s: notices %+v, want a resync", prev, cur, c.got)
	}
	if cur == prev {
		t.Errorf("the catch-up kept the future snapshot %s", prev)
	}
	// From the new snapshot on, catch-ups report revocations again.
	if _, err := store.Write(db).ExecContext(ctx, tInsertRevocation, "x2"); err != nil {
		t.Fatal(err)
	}
	c2 := &tCollector{}
	if _, err := store.CatchUpNotices(ctx, db, cur, c2.handle); err != nil {
		t.Fatal(err)
	}
	if !c2.has(revokedSerial("x2")) || c2.has(func(n store.Notice) bool { return n.Kind == store.NoticeResync }) {
		t.Errorf("the next catch-up reported %+v, want x2 and no resync", c2.got)
	}
}

// TestForgedNotices: a notice any database role can send with pg_notify,
// without the key every replica derives from the KEK, changes nothing (no
// cache dropped, nothing handed to the handler), while the notices of a
// store holding the key still arrive at once.
func TestForgedNotices(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, w, _ := tBusStores(t)
	c := tListen(t, db)
	gen := db.AccessGeneration()
	raw := store.Write(w)
	for _, p := range []string{
		`{"k":"revoked","ca":"ca1","all":true}`,
		`{"k":"revoked","ca":"ca1","all":true,"o":"0123456789abcdef"}`,
		`{"k":"ca","ca":"ca1","o":"x"}`,
		`{"k":"access","o":"x"}`,
		`{"k":"crl","ca":"ca1","o":"x"}`,
		`not json`,
	} {
		for range 5 {
			if _, err := raw.ExecContext(ctx, `SELECT pg_notify('certwright', $1)`, p); err != nil {
				t.Fatal(err)
			}
		}
	}
	time.Sleep(500 * time.Millisecond)
	if c.has(func(n store.Notice) bool { return n.CA == "ca1" }) {
		t.Errorf("forged notices reached the handler: %+v", c.got)
	}
	if g := db.AccessGeneration(); g != gen {
		t.Errorf("a forged access notice moved the access generation from %d to %d", gen, g)
	}
	// A genuine one still does, at once.
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	if err := w.CreatePrincipal(ctx, &authz.PrincipalRecord{ID: "p_bus", Name: "bus", Kind: authz.KindMachine, CreatedAt: at},
		audit.Event{Time: at, Principal: "test", Action: "principal.create", Outcome: audit.Success}); err != nil {
		t.Fatal(err)
	}
	for start := time.Now(); db.AccessGeneration() == gen; time.Sleep(5 * time.Millisecond) {
		if time.Since(start) > time.Second {
			t.Fatal("a genuine access notice did not move the access generation within a second")
		}
	}
}

// TestCatchUpCARecords: a change to a CA record that sent no notice (a
// transaction-pooling proxy in front of the listener, a notice lost) is
// reported by the next catch-up.
func TestCatchUpCARecords(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, w, _ := tBusStores(t)
	now := time.Now().UTC().Truncate(time.Second)
	c1 := &ca.CA{ID: "ca1", Name: "one", Kind: ca.KindRoot, Status: ca.StatusActive, CertDER: []byte("cert"),
		Key: keys.Ref{Provider: "software", ID: "k-ca1", Algorithm: pki.ECDSAP256, Blob: []byte{2}}, CreatedAt: now, UpdatedAt: now}
	if err := db.CreateCA(ctx, c1, audit.New(authz.System(), now, "ca.create", c1.ID, nil)); err != nil {
		t.Fatal(err)
	}
	c := tListen(t, db)
	if _, err := store.Write(w).ExecContext(ctx, `UPDATE cas SET name = 'renamed' WHERE id = 'ca1'`); err != nil {
		t.Fatal(err)
	}
	if took, ok := c.waitFor(2*store.CatchUpInterval+time.Second, func(n store.Notice) bool {
		return n.Kind == store.NoticeCA && n.CA == "ca1"
	}); !ok {
		t.Errorf("a CA record changed without a notice was not reported within %s: %+v", took, c.got)
	}
}

// TestAllCoalesced: "all" notices for one CA (each drops the CA's cached
// OCSP answers) are handled at most once per AllEvery, the ones arriving
// meanwhile coalesced into one handled when it has passed; another CA's
// are not held back.
func TestAllCoalesced(t *testing.T) {
	t.Parallel()
	var got []string
	apply, flush := store.ListenerApply(storetest.OpenSQLite(t), func(_ context.Context, n store.Notice) {
		got = append(got, n.CA)
	})
	start := time.Now()
	for range 20 {
		apply(store.Notice{Kind: store.NoticeRevoked, CA: "ca1", All: true})
	}
	apply(store.Notice{Kind: store.NoticeRevoked, CA: "ca2", All: true})
	apply(store.Notice{Kind: store.NoticeRevoked, CA: "ca1", Serials: []string{"01"}})
	flush(start.Add(store.AllEvery / 2))
	if want := "[ca1 ca2 ca1]"; fmt.Sprint(got) != want {
		t.Fatalf("within AllEvery: handled %v, want %s", got, want)
	}
	flush(start.Add(store.AllEvery + time.Millisecond))
	flush(start.Add(store.AllEvery + 2*time.Millisecond))
	if want := "[ca1 ca2 ca1 ca1]"; fmt.Sprint(got) != want {
		t.Fatalf("after AllEvery: handled %v, want %s", got, want)
	}
}
