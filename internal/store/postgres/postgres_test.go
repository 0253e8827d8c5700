package postgres

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
)

func TestOpenHidesPassword(t *testing.T) {
	t.Parallel()
	for _, url := range []string{
		"postgres://user:s3cret@127.0.0.1:notaport/db",
		"postgres://user:s3cret@127.0.0.1:1/db?connect_timeout=1",
	} {
		_, err := Open(context.Background(), url)
		if err == nil {
			t.Fatalf("Open(%s) succeeded", url)
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("error reveals the password: %v", err)
		}
	}
}

func TestIsUniqueViolation(t *testing.T) {
	t.Parallel()
	if IsUniqueViolation(nil) || IsUniqueViolation(errors.New("23505")) {
		t.Error("IsUniqueViolation true for a non-PostgreSQL error")
	}
	url := os.Getenv("CERTWRIGHT_TEST_POSTGRES")
	if url == "" {
		t.Skip("set CERTWRIGHT_TEST_POSTGRES=postgres://... to run the PostgreSQL store tests")
	}
	ctx := context.Background()
	db, err := Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "CREATE TEMP TABLE u (x int PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	_, err = conn.ExecContext(ctx, "INSERT INTO u VALUES (1), (1)")
	if !IsUniqueViolation(err) {
		t.Errorf("IsUniqueViolation(%v) = false", err)
	}
}

func TestPoolMaxConns(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		url  string
		size int
		rest string
	}{
		{"postgres://u@h/db?sslmode=disable", maxConns, "postgres://u@h/db?sslmode=disable"},
		{"postgres://u@h/db?pool_max_conns=7&sslmode=disable", 7, "postgres://u@h/db?sslmode=disable"},
		{"postgresql://u@h/db?pool_max_conns=2", 2, "postgresql://u@h/db"},
		{"host=h dbname=db", maxConns, "host=h dbname=db"},
	} {
		rest, size, err := poolSize(tc.url)
		if err != nil || size != tc.size || rest != tc.rest {
			t.Errorf("poolSize(%s) = %q, %d, %v; want %q, %d", tc.url, rest, size, err, tc.rest, tc.size)
		}
	}
	for _, bad := range []string{"0", "1", "x", "1001", "-3"} {
		_, err := Open(context.Background(), "postgres://u:s3cret@127.0.0.1:1/db?pool_max_conns="+bad)
		if err == nil || !strings.Contains(err.Error(), "pool_max_conns") || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("pool_max_conns=%s: %v, want an error naming the parameter and not the password", bad, err)
		}
	}
	url := os.Getenv("CERTWRIGHT_TEST_POSTGRES")
	if url == "" {
		t.Skip("set CERTWRIGHT_TEST_POSTGRES=postgres://... to run the PostgreSQL store tests")
	}
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	// The server never sees the parameter: it would refuse it as an
	// unknown run-time parameter.
	db, err := Open(context.Background(), url+sep+"pool_max_conns=3")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := db.Stats().MaxOpenConnections; got != 3 {
		t.Errorf("MaxOpenConnections = %d, want 3", got)
	}
}
