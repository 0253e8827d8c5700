package est

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/ca"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/gencache"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/issue"
	"github.com/certwright/certwright/internal/netsource"
	"github.com/certwright/certwright/internal/profile"
)

// Store is the persistence EST needs. Every write carries its audit
// event, committed with it.
type Store interface {
	GetCA(ctx context.Context, idOrName string) (*ca.CA, error)
	CreateESTProvisioner(ctx context.Context, p *Provisioner, ev audit.Event) error
	// GetESTProvisioner finds a provisioner by ID or, failing that, name.
	GetESTProvisioner(ctx context.Context, idOrName string) (*Provisioner, error)
	// ESTGeneration changes after every change to EST provisioners, made
	// here or (announced) by another replica: the provisioner cache keeps
	// nothing read under an older one.
	ESTGeneration() uint64
	ListESTProvisioners(ctx context.Context) ([]*Provisioner, error)
	UpdateESTProvisioner(ctx context.Context, p *Provisioner, ev audit.Event) error
	SetESTProvisionerDisabled(ctx context.Context, id string, at time.Time, by string, ev audit.Event) error
	// DeleteESTProvisioner deletes a disabled provisioner and its secrets;
	// ev gets the number of secrets deleted.
	DeleteESTProvisioner(ctx context.Context, id string, ev func(secrets int) audit.Event) error
	CreateESTSecret(ctx context.Context, s *Secret, ev audit.Event) error
	GetESTSecret(ctx context.Context, id string) (*Secret, error)
	ListESTSecrets(ctx context.Context, provisionerID string) ([]*Secret, error)
	// UseESTSecret marks secret id used at now from source under token,
	// unless it is used or expired already (ErrConflict): of requests
	// racing for one secret, on any replica, one wins.
	UseESTSecret(ctx context.Context, id string, now time.Time, from, token string, ev audit.Event) error
	// ReleaseESTSecret makes secret id unused again, with ev, if the
	// enrolment holding token used it.
	ReleaseESTSecret(ctx context.Context, id, token string, ev audit.Event) error
	// RevokeESTSecret revokes unused secret id of provisioner provID, with
	// ev; ErrConflict when it is used or revoked already.
	RevokeESTSecret(ctx context.Context, id, provID string, now time.Time, by string, ev audit.Event) error
	GetCertificate(ctx context.Context, serial string) (*inventory.Certificate, error)
	AppendAudit(ctx context.Context, evs ...audit.Event) error
}

// Issuer is the one issuance path.
type Issuer interface {
	Issue(ctx context.Context, req issue.Request) (*issue.Result, error)
	Chain(ctx context.Context, caID string) ([]*x509.Certificate, error)
}

// Profiles resolves profile names.
type Profiles interface {
	Get(ctx context.Context, name string) (*profile.Profile, error)
}

// Config holds the service's settings.
type Config struct {
	Clock clock.Clock
	Log   *slog.Logger
	// Rand is the source of IDs and secrets; nil means crypto/rand.
	Rand io.Reader
	// FailuresPerSecond and FailureBurst bound the failed device
	// authentications one source may cause (netsource.Limiter; 0 takes
	// 1 a second and a burst of 10).
	FailuresPerSecond float64
	FailureBurst      int
}

// Service runs EST provisioners and enrolments.
type Service struct {
	cfg      Config
	store    Store
	issuer   Issuer
	profiles Profiles
	failures *netsource.Limiter

	quietMu     sync.Mutex
	quietCounts map[string]int // refusals not audited one by one, by kind
	quietAt     time.Time      // when quietCounts was last logged

	poolMu sync.Mutex
	pools  map[string]*x509.CertPool // bootstrap bundles by provisioner ID + PEM digest

	// provisioners caches what every device request reads first, by
	// name, under the store's EST generation and for less than
	// ProvisionerCacheMaxAge (gencache): a change made here takes effect
	// on the next request, one another replica made within that age.
	provisioners *gencache.Cache[*Provisioner]
}

// ProvisionerCacheMaxAge bounds how long a cached provisioner is used
// when no change was announced (a replica whose notifications are lost).
const ProvisionerCacheMaxAge = time.Second

// provisionerCacheSize bounds the provisioners cached.
const provisionerCacheSize = 1024

// cloneProvisioner copies p, its allow-list included, so no caller shares
// the cached one.
func cloneProvisioner(p *Provisioner) *Provisioner {
	c := *p
	c.AllowedIdentities = slices.Clone(p.AllowedIdentities)
	return &c
}

// maxPools bounds the parsed bootstrap bundles kept.
const maxPools = 256

// New wires the service; every dependency is required.
func New(cfg Config, st Store, iss Issuer, profiles Profiles) (*Service, error) {
	if cfg.Clock == nil || cfg.Log == nil || st == nil || iss == nil || profiles == nil {
		return nil, errors.New("est: clock, logger, store, issuer and profiles are required")
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.FailuresPerSecond <= 0 {
		cfg.FailuresPerSecond = 1
	}
	if cfg.FailureBurst <= 0 {
		cfg.FailureBurst = 10
	}
	return &Service{
		cfg: cfg, store: st, issuer: iss, profiles: profiles,
		failures: netsource.NewLimiter(cfg.Clock.Now, cfg.FailuresPerSecond, cfg.FailureBurst),
		pools:    map[string]*x509.CertPool{},

		provisioners: gencache.New(ProvisionerCacheMaxAge, provisionerCacheSize, cloneProvisioner),

		quietCounts: map[string]int{},
	}, nil
}

func (s *Service) randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(s.cfg.Rand, b); err != nil {
		return "", fmt.Errorf("est: random: %w", err)
	}
	return hex.EncodeToString(b), nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// userError is a sentinel with a message of its own, for operators and
// devices: it says what is wrong and what to do.
type userError struct {
	kind error
	msg  string
}

func (e *userError) Error() string { return e.msg }
func (e *userError) Unwrap() error { return e.kind }

func errorf(kind error, format string, args ...any) error {
	return &userError{kind: kind, msg: fmt.Sprintf(format, args...)}
}
