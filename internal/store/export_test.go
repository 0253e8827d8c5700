package store

import "time"

// SetClock replaces the clock of the store's in-memory freshness bounds.
func SetClock(db *DB, now func() time.Time) { db.now = now }

// SetSteerBound sets the rows a filter's index may find before a listing
// tests the filter row by row (steerIndexes).
func SetSteerBound(db *DB, n int) { db.steerBound = n }
