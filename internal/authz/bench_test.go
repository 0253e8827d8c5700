package authz_test

import (
	"context"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/store"
	"github.com/certwright/certwright/internal/store/storetest"
)

// uncached defeats the token cache: its generation moves on every call,
// so every request reads the store as before the cache.
type uncached struct {
	authz.Store
	gen atomic.Uint64
}

func (u *uncached) AccessGeneration() uint64 { return u.gen.Add(1) }

// BenchmarkAuthenticate measures a bearer token's authentication, cached
// and not, on SQLite and (with CERTWRIGHT_TEST_POSTGRES) PostgreSQL.
func BenchmarkAuthenticate(b *testing.B) {
	for _, be := range []struct {
		name string
		open func(testing.TB) *store.DB
	}{{"sqlite", storetest.OpenSQLite}, {"postgres", storetest.OpenPostgres}} {
		b.Run(be.name, func(b *testing.B) {
			db := be.open(b)
			ctx := context.Background()
			p := &authz.PrincipalRecord{ID: "p_ci", Name: "ci", Kind: authz.KindMachine, CreatedAt: now, CreatedBy: "test"}
			if err := db.CreatePrincipal(ctx, p, ev("principal.create")); err != nil {
				b.Fatal(err)
			}
			r, _ := authz.BuiltinRole(authz.RoleIssuer)
			if err := db.CreateBinding(ctx, &authz.Binding{ID: "b_ci", PrincipalID: p.ID, Role: r, CreatedAt: now}, ev("binding.create")); err != nil {
				b.Fatal(err)
			}
			tok, rec, err := authz.NewToken(p.ID, "bench", now, time.Time{})
			if err != nil {
				b.Fatal(err)
			}
			if err := db.CreateToken(ctx, rec, ev("token.create")); err != nil {
				b.Fatal(err)
			}
			for _, c := range []struct {
				name string
				st   authz.Store
			}{{"cached", db}, {"uncached", &uncached{Store: db}}} {
				b.Run(c.name, func(b *testing.B) {
					// A clock that stands still: the entry never ages, and the
					// last-used time is written once.
					a := authz.NewAuthenticator(c.st, nil, func() time.Time { return now })
					if _, err := a.Authenticate(ctx, tok); err != nil { // fills the cache, touches once
						b.Fatal(err)
					}
					b.ReportAllocs()
					cpu := cpuTime()
					for b.Loop() {
						if _, err := a.Authenticate(ctx, tok); err != nil {
							b.Fatal(err)
						}
					}
					// CPU of this process (not of a PostgreSQL server): wall time
					// is unreliable on a shared machine.
					b.ReportMetric(float64((cpuTime()-cpu).Nanoseconds())/float64(b.N), "cpu-ns/op")
				})
			}
		})
	}
}

// cpuTime is the user and system CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
