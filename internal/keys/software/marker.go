package software

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/certwright/certwright/internal/atomicfile"
)

// The legacy marker is a file beside the KEK recording that the keys of
// this data directory are all purpose-bound: the one-off migration of
// version-1 blobs finished, or the directory was created by a version that
// never wrote them. It lives outside the database on purpose: someone who
// can write the database but not the data directory cannot make the server
// open version-1 blobs again (the database's own marker setting is theirs
// to delete).

// legacyMarkerText is the marker file's content (informative only: the
// file's existence is what counts).
const legacyMarkerText = "certwright: every key in this data directory's database is purpose-bound; legacy (id-only) wrapped keys are never opened again.\n" +
	"Delete this file only after restoring a whole database backup made before the upgrade to purpose-bound keys.\n"

// LegacyMarkerExists reports whether the marker at path exists (as
// anything: a directory or link there counts too, so the check fails
// safe).
func LegacyMarkerExists(path string) (bool, error) {
	_, err := os.Lstat(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	default:
		return false, fmt.Errorf("software: legacy marker %s: %w", path, err)
	}
}

// WriteLegacyMarker creates the marker at path (mode 0600) atomically and
// durably: written to a temporary file, synced, renamed into place and the
// directory synced. An existing marker is left as it is.
func WriteLegacyMarker(path string) error {
	if ok, err := LegacyMarkerExists(path); err != nil || ok {
		return err
	}
	if err := atomicfile.WriteFile(path, []byte(legacyMarkerText), 0o600); err != nil {
		return fmt.Errorf("software: legacy marker: %w", err)
	}
	return nil
}
