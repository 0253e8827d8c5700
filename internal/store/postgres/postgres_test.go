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
