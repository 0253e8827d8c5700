package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/certwright/certwright/internal/atomicfile"
	"github.com/certwright/certwright/internal/pki"
)

// printJSON writes v as indented JSON, as the API sends it.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// indentedJSON returns the server's answer indented for a reader when
// format is json (the API answers compact JSON); any other format, or
// bytes that are not JSON, unchanged.
func indentedJSON(data []byte, format string) []byte {
	if format != "json" {
		return data
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, data, "", "  "); err != nil {
		return data
	}
	return buf.Bytes()
}

// printList writes a list as every --json list is shaped: an object with
// the items (never null) under key, as the API sends its lists.
func printList[T any](w io.Writer, key string, items []T) error {
	if items == nil {
		items = []T{}
	}
	return printJSON(w, map[string][]T{key: items})
}

// table prints aligned columns under a header row.
type table struct {
	tw *tabwriter.Writer
}

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	t.row(header...)
	return t
}

// row prints one row. A cell's tabs and line breaks become spaces and its
// other control characters escapes (pki.Printable): cells show what
// servers, peers and certificates chose, which must not move the cursor
// or rewrite the terminal.
func (t *table) row(cells ...string) {
	for i, c := range cells {
		if c == "" {
			cells[i] = "-"
		}
		cells[i] = pki.Printable(strings.NewReplacer("\t", " ", "\n", " ").Replace(cells[i]))
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

// fields prints "key: value" lines with aligned values, skipping empty ones.
type fields struct {
	tw *tabwriter.Writer
}

func newFields(w io.Writer) *fields {
	return &fields{tw: tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)}
}

// add prints one field; control characters in the value are escaped, as
// in a table's cells.
func (f *fields) add(key, value string) {
	if value == "" {
		return
	}
	fmt.Fprintf(f.tw, "%s:\t%s\n", key, pki.Printable(value))
}

func (f *fields) flush() error { return f.tw.Flush() }

// tableTime is the compact UTC time of list columns.
func tableTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04")
}

func tableTimePtr(t *time.Time) string {
	if t == nil {
		return ""
	}
	return tableTime(*t)
}

// showTime is the full UTC time of show output.
func showTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func showTimePtr(t *time.Time) string {
	if t == nil {
		return ""
	}
	return showTime(*t)
}

// ensureNewline makes concatenated PEM documents stay well formed.
func ensureNewline(s string) string {
	if s != "" && !strings.HasSuffix(s, "\n") {
		return s + "\n"
	}
	return s
}

// writeOutput writes data to path, or to stdout when path is "" or "-". A
// file is replaced atomically so that a reader never sees half of it.
func (r *runner) writeOutput(path string, data []byte, perm os.FileMode) error {
	if path == "" || path == "-" {
		_, err := r.stdout.Write(data)
		return err
	}
	return atomicfile.WriteFile(path, data, perm)
}

// checkNewFile fails early, before anything is issued, when a key file
// already exists.
func checkNewFile(path string) error {
	_, err := os.Lstat(path)
	if err == nil {
		return &hintError{fmt.Errorf("%s already exists; a private key is never overwritten", path),
			"choose another file name, or move the old key away first"}
	}
	if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("check %s: %w", path, err)
	}
	return nil
}

// readInput reads a file named on the command line; "-" is stdin.
func (r *runner) readInput(path string, max int64) ([]byte, error) {
	if path == "-" {
		return readAllLimited(r.stdin, "standard input", max)
	}
	return readLimited(path, max)
}
