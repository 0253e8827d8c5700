package store_test

import (
	"testing"

	"github.com/certwright/certwright/internal/store/storetest"
)

func TestPostgres(t *testing.T) {
	t.Parallel()
	storetest.Run(t, storetest.Postgres(storetest.PostgresURL(t)))
}

func TestPostgresConcurrentOpen(t *testing.T) {
	t.Parallel()
	concurrentOpen(t, storetest.PostgresSchema(t, storetest.PostgresURL(t)))
}
