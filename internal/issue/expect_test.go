package issue_test

import (
	"context"
	"crypto/x509/pkix"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/issue"
	"github.com/certwright/certwright/internal/lint"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/store"
)

// expectingStore counts the issuances announced to the group commit and
// not yet withdrawn, and records that count at each insert.
type expectingStore struct {
	*store.DB
	mu          sync.Mutex
	announced   int
	outstanding int
	atInsert    []int
}

func (s *expectingStore) ExpectCertificate() func() {
	s.mu.Lock()
	s.announced++
	s.outstanding++
	s.mu.Unlock()
	arrived := s.DB.ExpectCertificate()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			s.outstanding--
			s.mu.Unlock()
			arrived()
		})
	}
}

func (s *expectingStore) InsertCertificate(ctx context.Context, c *inventory.Certificate, ev audit.Event) error {
	s.mu.Lock()
	s.atInsert = append(s.atInsert, s.outstanding)
	s.mu.Unlock()
	return s.DB.InsertCertificate(ctx, c, ev)
}

// TestIssueAnnouncesItsInsert: an issuance tells the store's group commit
// that its certificate is coming once nothing slow or open-ended (key
// generation, a hold for approval) stands before the insert, withdraws
// that just before it inserts (so the commit does not wait for a row
// already queued), and withdraws it too when it fails after announcing
// (an announcement left behind would make every later commit wait).
func TestIssueAnnouncesItsInsert(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	st := &expectingStore{DB: e.db}
	svc, err := issue.New(issue.Config{PublicHTTPBase: base, Clock: e.clk, Log: slog.New(slog.DiscardHandler)}, st, e.profiles, e.kp, e.linter)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	csr := mustCSR(t, mustKey(t, pki.ECDSAP256), names("web_server"))
	_, err = svc.Issue(ctx, issue.Request{Principal: admin, CA: "issuing", Profile: "web_server", CSR: csr})
	if err != nil {
		t.Fatal(err)
	}
	// Fails lint, after the announcement.
	_, err = svc.Issue(ctx, issue.Request{Principal: admin, CA: "issuing", Profile: "web_server",
		Subject: pkix.Name{CommonName: strings.Repeat("a", 65)}, DNSNames: []string{"a.example.internal"}})
	var le *lint.Error
	if !errors.As(err, &le) {
		t.Fatalf("Issue = %v, want a lint error", err)
	}
	// Fails before anything is on its way: never announced.
	if _, err := svc.Issue(ctx, issue.Request{Principal: admin, CA: "issuing", Profile: "no-such-profile", CSR: csr}); err == nil {
		t.Fatal("issuance under a missing profile succeeded")
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.announced != 2 || st.outstanding != 0 {
		t.Errorf("announced %d issuances, %d still outstanding; want 2 and 0", st.announced, st.outstanding)
	}
	if len(st.atInsert) != 1 || st.atInsert[0] != 0 {
		t.Errorf("outstanding announcements at each insert: %v; want [0] (withdrawn before the insert)", st.atInsert)
	}
}
