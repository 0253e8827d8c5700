package app

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/config"
)

// tOpenRefused opens cfg's data directory, failing unless it is refused
// with an error holding every one of want.
func tOpenRefused(t *testing.T, cfg *config.Config, want ...string) {
	t.Helper()
	a, err := Open(context.Background(), cfg, tLogger(), clock.Real{})
	if err == nil {
		a.Close()
		t.Fatal("Open succeeded")
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("refusal %q does not say %q", err, w)
		}
	}
}

func tOpenOK(t *testing.T, cfg *config.Config) {
	t.Helper()
	a, err := Open(context.Background(), cfg, tLogger(), clock.Real{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	a.Close()
}

func TestServeRefusesDataDirOpenToOthers(t *testing.T) {
	t.Parallel()
	cfg := tConfig(t, "")
	tInit(t, cfg, clock.Real{})
	if err := os.Chmod(cfg.DataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	tOpenRefused(t, cfg, cfg.DataDir, "0755", "chmod 700 "+cfg.DataDir)
	if err := os.Chmod(cfg.DataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	tOpenOK(t, cfg)
}

func TestServeRefusesMissingDatabase(t *testing.T) {
	t.Parallel()
	cfg := tConfig(t, "")
	tInit(t, cfg, clock.Real{})
	db := filepath.Join(cfg.DataDir, DBFile)
	for _, f := range []string{db, db + "-wal", db + "-shm"} {
		if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
	}
	tOpenRefused(t, cfg, db, "missing", RootFile)
	if _, err := os.Stat(db); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the refused start left a database file behind: %v", err)
	}
}

// TestServeRefusesAnotherInstancesDatabase: a data directory pointed at
// the database of another instance is refused by name, before anything is
// written to that database; a data directory from before instance IDs
// were recorded adopts its database's.
func TestServeRefusesAnotherInstancesDatabase(t *testing.T) {
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			a := tConfig(t, be.dbURL(t))
			tInit(t, a, clock.Real{})
			b := tConfig(t, be.dbURL(t))
			tInit(t, b, clock.Real{})
			if a.DB == "" {
				a.DB = DBURL(a)
			}
			idA, err := os.ReadFile(filepath.Join(a.DataDir, InstanceFile))
			if err != nil {
				t.Fatal(err)
			}
			b.DB = a.DB
			tOpenRefused(t, b, "another Certwright instance", strings.TrimSpace(string(idA)), b.DataDir)

			// An instance ID file lost (or from before IDs): adopted.
			if err := os.Remove(filepath.Join(a.DataDir, InstanceFile)); err != nil {
				t.Fatal(err)
			}
			tOpenOK(t, a)
			if got, err := os.ReadFile(filepath.Join(a.DataDir, InstanceFile)); err != nil || !bytes.Equal(got, idA) {
				t.Errorf("instance ID file after the start: %q, %v; want %q", got, err, idA)
			}
		})
	}
}

func TestServeWarnsSynchronousCommitOff(t *testing.T) {
	t.Parallel()
	cfg := tConfig(t, tBackends[1].dbURL(t))
	tInit(t, cfg, clock.Real{})
	open := func() string {
		var buf bytes.Buffer
		a, err := Open(context.Background(), cfg, slog.New(slog.NewTextHandler(&syncWriter{w: &buf}, nil)), clock.Real{})
		if err != nil {
			t.Fatal(err)
		}
		a.Close()
		return buf.String()
	}
	if out := open(); strings.Contains(out, "synchronous_commit") {
		t.Errorf("warned with synchronous_commit on:\n%s", out)
	}
	cfg.DB += "&synchronous_commit=off"
	if out := open(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, "synchronous_commit=off") {
		t.Errorf("no warning with synchronous_commit=off:\n%s", out)
	}
}
