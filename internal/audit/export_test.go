package audit_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/certwright/certwright/internal/audit"
)

func TestWriteJSONL(t *testing.T) {
	t.Parallel()
	prev := audit.Genesis()
	var buf bytes.Buffer
	var want []audit.Event
	for _, details := range []string{`{"a":1,"b":"<x>"}`, "{\n  \"a\": 1\n}", `{"a":`} {
		e := sampleEvent()
		e.Details = json.RawMessage(details)
		e.PrevHash = prev
		e.Hash = e.ComputeHash(prev)
		prev = e.Hash
		want = append(want, e)
		if err := audit.WriteJSONL(&buf, &e); err != nil {
			t.Fatal(err)
		}
	}
	sc := bufio.NewScanner(&buf)
	i := 0
	for sc.Scan() {
		line := sc.Bytes()
		var got struct {
			audit.Event
			DetailsRaw *string `json:"details_raw"`
		}
		if err := json.Unmarshal(line, &got); err != nil {
			t.Fatalf("line %d %s: %v", i, line, err)
		}
		if got.DetailsRaw != nil {
			got.Details = json.RawMessage(*got.DetailsRaw)
		} else if i > 0 {
			t.Errorf("line %d: no details_raw for details that JSON would alter: %s", i, line)
		}
		if !bytes.Equal(got.Details, want[i].Details) {
			t.Errorf("line %d: details %q, want %q", i, got.Details, want[i].Details)
		}
		// The exported record hashes to its exported hash.
		if h := got.ComputeHash(got.PrevHash); !bytes.Equal(h, got.Hash) || !bytes.Equal(h, want[i].Hash) {
			t.Errorf("line %d does not re-hash: %s", i, line)
		}
		if i == 0 && !strings.Contains(string(line), `"hash":"`+want[0].Hash.String()+`"`) {
			t.Errorf("hash not hex in %s", line)
		}
		i++
	}
	if i != len(want) {
		t.Fatalf("%d lines, want %d", i, len(want))
	}
}
