package store

import "time"

// SetClock replaces the clock of the store's in-memory freshness bounds.
func SetClock(db *DB, now func() time.Time) { db.now = now }
