package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/certwright/certwright/internal/atomicfile"
)

// An Anchor is the latest checkpoint as recorded outside the database, so
// that someone who can write the database but not the data directory
// cannot delete the newest checkpoints and rewrite the chain after them
// unnoticed: the database must still hold this checkpoint, at this
// position.
type Anchor struct {
	// Source names where the anchor was read ("anchor file PATH"); it is
	// not stored.
	Source string `json:"-"`
	// Position is the checkpoint's position among all checkpoints, from
	// 1: its Counter for a chained checkpoint.
	Position   int64      `json:"position"`
	Checkpoint Checkpoint `json:"checkpoint"`
}

// AnchorStore keeps the anchor. Load returns nil, nil when there is none.
type AnchorStore interface {
	Load(ctx context.Context) (*Anchor, error)
	Save(ctx context.Context, a *Anchor) error
}

// ErrAnchor marks a database whose checkpoints do not reach or do not
// contain the anchored checkpoint: checkpoints were deleted or replaced.
var ErrAnchor = errors.New("audit: the database's checkpoints do not extend the external anchor")

// anchorFileVersion is the version of the anchor file's format.
const anchorFileVersion = 1

// maxAnchorFile bounds the anchor file, and the tail of the anchor log
// read for its last line.
const maxAnchorFile = 64 << 10

type anchorFile struct {
	Version int `json:"version"`
	Anchor
}

// FileAnchor keeps the anchor in a file (mode 0600, replaced atomically:
// temporary file, fsync, rename, fsync of the directory) and, when LogPath
// is set, appends every anchor to an append-only log as one JSON line, for
// shipping to storage the server cannot rewrite.
type FileAnchor struct {
	Path    string
	LogPath string
}

// Load reads the anchor file; a missing file is no anchor.
func (f *FileAnchor) Load(_ context.Context) (*Anchor, error) {
	b, err := readLimited(f.Path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit: anchor file: %w", err)
	}
	a, err := parseAnchor(b)
	if err != nil {
		return nil, fmt.Errorf("audit: anchor file %s: %w", f.Path, err)
	}
	a.Source = "anchor file " + f.Path
	return a, nil
}

// LoadAll returns the anchor file's anchor and the anchor log's last
// one, those that exist.
func (f *FileAnchor) LoadAll(ctx context.Context) ([]Anchor, error) {
	var out []Anchor
	a, err := f.Load(ctx)
	if err != nil {
		return nil, err
	}
	if a != nil {
		out = append(out, *a)
	}
	if f.LogPath == "" {
		return out, nil
	}
	line, err := lastLine(f.LogPath)
	if errors.Is(err, os.ErrNotExist) || (err == nil && len(line) == 0) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit: anchor log: %w", err)
	}
	la, err := parseAnchor(line)
	if err != nil {
		return nil, fmt.Errorf("audit: anchor log %s: last line: %w", f.LogPath, err)
	}
	la.Source = "anchor log " + f.LogPath
	return append(out, *la), nil
}

func parseAnchor(b []byte) (*Anchor, error) {
	var af anchorFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&af); err != nil {
		return nil, fmt.Errorf("not an anchor: %w", err)
	}
	if af.Version != anchorFileVersion {
		return nil, fmt.Errorf("anchor format version %d, this build reads %d", af.Version, anchorFileVersion)
	}
	if af.Position < 1 || af.Checkpoint.Seq < 1 {
		return nil, fmt.Errorf("anchor names no checkpoint (position %d, event %d)", af.Position, af.Checkpoint.Seq)
	}
	return &af.Anchor, nil
}

// Save replaces the anchor file with a, then appends a to the log.
func (f *FileAnchor) Save(_ context.Context, a *Anchor) error {
	b, err := json.Marshal(anchorFile{Version: anchorFileVersion, Anchor: *a})
	if err != nil {
		return fmt.Errorf("audit: anchor: %w", err)
	}
	if err := atomicfile.WriteFile(f.Path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("audit: anchor file: %w", err)
	}
	if f.LogPath == "" {
		return nil
	}
	if err := appendLine(f.LogPath, append(b, '\n')); err != nil {
		return fmt.Errorf("audit: anchor log: %w", err)
	}
	return nil
}

func readLimited(path string) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, maxAnchorFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxAnchorFile {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxAnchorFile)
	}
	return b, nil
}

// lastLine returns the last complete line of the file at path (without
// its newline), reading at most maxAnchorFile bytes from its end.
func lastLine(path string) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return nil, err
	}
	off := max(0, fi.Size()-maxAnchorFile)
	b, err := io.ReadAll(io.NewSectionReader(fh, off, fi.Size()-off))
	if err != nil {
		return nil, err
	}
	b = bytes.TrimRight(b, "\n")
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		b = b[i+1:]
	} else if off > 0 {
		return nil, fmt.Errorf("%s: last line longer than %d bytes", path, maxAnchorFile)
	}
	return b, nil
}

// appendLine appends b to the file at path (created 0600) and syncs it.
func appendLine(path string, b []byte) error {
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if _, err := fh.Write(b); err != nil {
		fh.Close()
		return err
	}
	if err := fh.Sync(); err != nil {
		fh.Close()
		return err
	}
	return fh.Close()
}
