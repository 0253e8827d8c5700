package inventory

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/pki"
)

// Bounds of one certificate listing for a caller whose scope covers few
// rows: the store is read in pages of at least ScanPage rows (never one
// row at a time for limit=1), and at most ScanMax rows per request.
const (
	ScanPage = 1000
	ScanMax  = 20000
)

// ScanLimits bound one ScanVisible: at least Page rows per store read,
// at most Max rows per scan.
type ScanLimits struct{ Page, Max int }

// Lister is the inventory read a listing pages over.
type Lister func(ctx context.Context, f Filter) ([]*Certificate, error)

// ScanVisible reads the inventory from f's position in f.Order and hands
// every row to show, which says whether the row was shown (it is within the
// caller's scope); it stops once f.Limit rows were shown, at the end of the
// inventory, or after lim.Max rows. The first read asks for f.Limit rows
// (a caller that sees everything needs no more), later ones for at least
// lim.Page. It returns resume, the last row read, only when the row bound
// ended the scan before the page was full: the listing continues after it,
// but it may be outside the caller's scope and must not be shown as such.
func ScanVisible(ctx context.Context, list Lister, f Filter, lim ScanLimits, show func(*Certificate) bool) (resume *Certificate, err error) {
	want, shown, scanned := f.Limit, 0, 0
	for {
		certs, err := list(ctx, f)
		if err != nil {
			return nil, err
		}
		for _, c := range certs {
			if show(c) {
				if shown++; shown == want {
					return nil, nil
				}
			}
		}
		scanned += len(certs)
		if len(certs) < f.Limit {
			return nil, nil // the inventory ends here
		}
		f.Continue(certs[len(certs)-1])
		if scanned >= lim.Max {
			return certs[len(certs)-1], nil
		}
		f.Limit = min(max(want, lim.Page, 1), lim.Max-scanned)
	}
}

// Position is the text of the position after c in a listing in order
// o: its serial; in a timed order "<key in Unix microseconds>_<serial>";
// in any other "<key>_<serial>" (a serial has no "_", so the last one
// ends the key).
func Position(o Order, c *Certificate) string {
	key, t := o.Key(c)
	switch {
	case o == OrderSerial:
		return c.Serial
	case o.Timed():
		return strconv.FormatInt(t.UnixMicro(), 10) + "_" + c.Serial
	}
	return key + "_" + c.Serial
}

// SetPosition sets f's position from s, as Position wrote it for f's
// order.
func (f *Filter) SetPosition(s string) error {
	serial := s
	if f.Order != OrderSerial {
		i := strings.LastIndex(s, "_")
		if i < 0 {
			return fmt.Errorf("%q is not a position in %s order (want the \"next\" of the previous page)", s, f.Order.Name())
		}
		key, rest := s[:i], s[i+1:]
		if f.Order.Timed() {
			n, err := strconv.ParseInt(key, 10, 64)
			if err != nil {
				return fmt.Errorf("%q is not a position in %s order (want the \"next\" of the previous page)", s, f.Order.Name())
			}
			f.AfterTime = time.UnixMicro(n).UTC()
		} else {
			f.AfterKey = key
		}
		serial = rest
	}
	n, err := pki.NormalizeSerial(serial)
	if err != nil {
		return err
	}
	f.After = n
	return nil
}
