package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"net"

	"github.com/certwright/certwright/internal/store/postgres"
	"github.com/certwright/certwright/internal/store/sqlite"
)

// Unavailable reports whether err is the database failing rather than the
// request: it did not answer before the deadline, could not be reached,
// dropped the connection, or cannot write (read-only, disk full). The edge
// answers such errors 503, retryable.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &ne) ||
		postgres.IsUnavailable(err) || sqlite.IsUnavailable(err)
}
