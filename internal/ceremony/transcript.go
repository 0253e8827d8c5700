package ceremony

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/certwright/certwright/internal/pki"
)

// The transcript (transcript.jsonl) is the record of the ceremony: one
// JSON object per line, appended after each step and never rewritten.
// Each line carries the SHA-256 of the line before it (prev_sha256, empty
// for the first) and its number (seq, from 1), so a line removed, changed
// or reordered breaks the chain; every step reads the whole chain first
// and refuses to go on when it is broken.

// Transcript actions.
const (
	ActionRootCreate       = "root.create"
	ActionIntermediateSign = "intermediate.sign"
	ActionCRLSign          = "crl.sign"
)

// Entry is one line of the transcript.
type Entry struct {
	Seq       int       `json:"seq"`
	Time      time.Time `json:"time"`
	Action    string    `json:"action"`
	Operators []string  `json:"operators"`
	Host      string    `json:"host"`
	// Key is the root key that signed.
	Key KeyInfo `json:"key"`
	// Certificate is what was signed: the root itself, or a subordinate CA.
	Certificate *CertInfo `json:"certificate,omitempty"`
	// CSR is the request a subordinate CA certificate was signed from.
	CSR *CSRInfo `json:"csr,omitempty"`
	// CRL is the CRL signed.
	CRL        *CRLInfo `json:"crl,omitempty"`
	PrevSHA256 string   `json:"prev_sha256"`
}

// KeyInfo identifies the root key in the transcript: where it was for the
// step (for a token, the module, token and key used) and which key it is.
type KeyInfo struct {
	Source     string           `json:"source"`
	Location   string           `json:"location"`
	PKCS11     *PKCS11Ref       `json:"pkcs11,omitempty"`
	Algorithm  pki.KeyAlgorithm `json:"algorithm"`
	SPKISHA256 string           `json:"spki_sha256"`
}

// CSRInfo identifies a signed request.
type CSRInfo struct {
	Subject    string `json:"subject"`
	SHA256     string `json:"sha256"`
	SPKISHA256 string `json:"spki_sha256"`
}

// CRLInfo describes a signed CRL.
type CRLInfo struct {
	Number     int64     `json:"number"`
	ThisUpdate time.Time `json:"this_update"`
	NextUpdate time.Time `json:"next_update"`
	Entries    int       `json:"entries"`
	SHA256     string    `json:"sha256"`
	// Revoked are the revocations this CRL added.
	Revoked []Revoked `json:"revoked"`
}

// transcriptTail is what appending needs from the lines so far.
type transcriptTail struct {
	seq  int
	hash string // hex SHA-256 of the last line
}

func lineHash(line []byte) string {
	h := sha256.Sum256(line)
	return hex.EncodeToString(h[:])
}

// readTranscript checks the transcript's chain and returns its tail and
// its first entry.
func readTranscript(path string) (transcriptTail, *Entry, error) {
	var t transcriptTail
	var first *Entry
	f, err := os.Open(path)
	if err != nil {
		return t, nil, fmt.Errorf("%w: transcript: %w", ErrState, err)
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil {
		return t, nil, fmt.Errorf("%w: transcript: %w", ErrState, err)
	} else if st.Size() > maxTranscriptFile {
		return t, nil, fmt.Errorf("%w: transcript %s is larger than %d bytes", ErrState, path, maxTranscriptFile)
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), maxTranscriptLine)
	for sc.Scan() {
		line := sc.Bytes()
		var e Entry
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			return t, nil, fmt.Errorf("%w: transcript line %d: %w", ErrState, t.seq+1, err)
		}
		if e.Seq != t.seq+1 {
			return t, nil, fmt.Errorf("%w: transcript line %d has seq %d: a line was removed or reordered", ErrState, t.seq+1, e.Seq)
		}
		if e.PrevSHA256 != t.hash {
			return t, nil, fmt.Errorf("%w: transcript line %d does not follow line %d (prev_sha256 %s, want %s): the transcript was altered", ErrState, e.Seq, t.seq, e.PrevSHA256, t.hash)
		}
		t.seq, t.hash = e.Seq, lineHash(line)
		if first == nil {
			first = &e
		}
	}
	if err := sc.Err(); err != nil {
		return t, nil, fmt.Errorf("%w: transcript: %w", ErrState, err)
	}
	if t.seq == 0 {
		return t, nil, fmt.Errorf("%w: the transcript %s is empty", ErrState, path)
	}
	return t, first, nil
}

// appendEntry completes e (seq and prev_sha256), appends it to the
// transcript and syncs it.
func appendEntry(dir string, tail *transcriptTail, e *Entry) error {
	e.Seq, e.PrevSHA256 = tail.seq+1, tail.hash
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("ceremony: encode transcript entry: %w", err)
	}
	path := filepath.Join(dir, TranscriptFileName)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("ceremony: transcript: %w", err)
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("ceremony: transcript: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("ceremony: transcript: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("ceremony: transcript: %w", err)
	}
	tail.seq, tail.hash = e.Seq, lineHash(line)
	return nil
}

// TranscriptHead returns the number and the SHA-256 of the transcript's
// last line. Written down in the paper record of the ceremony, it anchors
// the chain: each line's hash covers the lines before it.
func (d *Dir) TranscriptHead() (seq int, sha256 string) { return d.tail.seq, d.tail.hash }

// entry starts a transcript entry for action by s with the root key,
// found where ref says.
func (d *Dir) entry(s *Session, action string, now time.Time, ref KeyRef) *Entry {
	return &Entry{
		Time: now, Action: action, Operators: append([]string(nil), s.Operators...), Host: s.Host,
		Key: KeyInfo{Source: ref.Source, Location: ref.Location, PKCS11: ref.PKCS11, Algorithm: d.state.KeyAlgorithm, SPKISHA256: d.state.KeySPKISHA256},
	}
}
