package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// jsonlEvent is Event's JSON shape plus DetailsRaw, which carries the
// stored details byte for byte when JSON encoding would alter them
// (whitespace is compacted; invalid JSON cannot be embedded), so an
// exported record can always be hashed again.
type jsonlEvent struct {
	Seq         int64           `json:"seq"`
	Time        time.Time       `json:"time"`
	Principal   string          `json:"principal"`
	PrincipalID string          `json:"principal_id,omitempty"`
	Source      string          `json:"source,omitempty"`
	Action      string          `json:"action"`
	Target      string          `json:"target,omitempty"`
	Outcome     Outcome         `json:"outcome"`
	RequestID   string          `json:"request_id,omitempty"`
	Details     json.RawMessage `json:"details,omitempty"`
	DetailsRaw  *string         `json:"details_raw,omitempty"`
	PrevHash    Hash            `json:"prev_hash,omitempty"`
	Hash        Hash            `json:"hash,omitempty"`
}

// WriteJSONL writes ev as one JSON object on one line (the Event JSON
// shape; hashes hex). Details that JSON encoding would change are also
// written verbatim, as the string details_raw.
func WriteJSONL(w io.Writer, ev *Event) error {
	j := jsonlEvent{
		Seq: ev.Seq, Time: ev.Time, Principal: ev.Principal, PrincipalID: ev.PrincipalID, Source: ev.Source, Action: ev.Action,
		Target: ev.Target, Outcome: ev.Outcome, RequestID: ev.RequestID,
		PrevHash: ev.PrevHash, Hash: ev.Hash,
	}
	if len(ev.Details) > 0 {
		var compact bytes.Buffer
		if err := json.Compact(&compact, ev.Details); err == nil {
			j.Details = ev.Details
		}
		if !bytes.Equal(compact.Bytes(), ev.Details) {
			raw := string(ev.Details)
			j.DetailsRaw = &raw
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf) // ends the line with a newline
	enc.SetEscapeHTML(false)
	if err := enc.Encode(&j); err != nil {
		return fmt.Errorf("audit: export event %d: %w", ev.Seq, err)
	}
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("audit: export event %d: %w", ev.Seq, err)
	}
	return nil
}
