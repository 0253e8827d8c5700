package console

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/inventory"
)

// The overview's charts are drawn on the server as inline SVG: bars
// (stacked by series) in a fixed viewBox that the stylesheet scales, one
// <title> per bar for the pointer, and the same figures in a table for
// screen readers and for copying. Colours come from the stylesheet's
// series classes (s0…s5), so dark mode and the CSP (no inline style) hold.

const (
	chartW, chartH   = 720, 220
	chartLeft        = 64 // room for the y axis labels
	chartTop         = 10
	chartBottom      = 34 // room for the x axis labels
	maxSeries        = 5  // more CAs than this are drawn as "other"
	timelineWeeks    = 13
	activityDays     = 30
	dayLayout        = "2006-01-02"
	otherSeriesLabel = "other CAs"
)

type chart struct {
	ID, Title, Desc string
	W, H            int
	Bars            []chartBar
	Ticks           []chartTick
	Legend          []chartLegend
	// Series names the table's columns; Rows holds each bar's figures.
	Series []string
	Empty  bool
	// EmptyText says why an empty chart has no bars ("" for the
	// default, nothing in its period).
	EmptyText string
	// AxisY is the x position of the y axis; BaseY the y of the x axis.
	AxisY, BaseY int
}

type chartBar struct {
	X, W   int
	Label  string // on the x axis ("" for none)
	LabelX int
	Title  string // the bar's figures in words
	Href   string // the inventory behind the bar ("" for none)
	Segs   []chartSeg
	Values []int // per series, for the table
	Total  int
	Name   string // the bar's full name, for the table
}

type chartSeg struct {
	Y, H  int
	Class string
}

type chartTick struct {
	Y     int
	Label string
}

type chartLegend struct{ Class, Label string }

// barChart lays out bars (each a list of values, one per series) under a
// rounded maximum with four grid lines.
func barChart(id, title, desc string, series []string, names, labels, hrefs []string, values [][]int) *chart {
	c := &chart{ID: id, Title: title, Desc: desc, W: chartW, H: chartH, Series: series, AxisY: chartLeft, BaseY: chartH - chartBottom}
	for i, s := range series {
		c.Legend = append(c.Legend, chartLegend{Class: "s" + strconv.Itoa(min(i, maxSeries)), Label: s})
	}
	top := 0
	for _, vs := range values {
		sum := 0
		for _, v := range vs {
			sum += v
		}
		top = max(top, sum)
	}
	c.Empty = top == 0
	top = niceCeil(top)
	plotH := chartH - chartTop - chartBottom
	for i := 0; i <= 4; i++ {
		v := top * i / 4
		c.Ticks = append(c.Ticks, chartTick{Y: c.BaseY - plotH*i/4, Label: compact(v)})
	}
	n := len(values)
	slot := (chartW - chartLeft) / max(n, 1)
	gap := max(slot/5, 1)
	for i, vs := range values {
		b := chartBar{X: chartLeft + i*slot + gap/2, W: slot - gap, Label: labels[i], Name: names[i], Values: vs}
		b.LabelX = b.X + b.W/2
		if hrefs != nil {
			b.Href = hrefs[i]
		}
		y := c.BaseY
		var parts []string
		for s, v := range vs {
			b.Total += v
			if v == 0 {
				continue
			}
			h := max(plotH*v/top, 1)
			y -= h
			b.Segs = append(b.Segs, chartSeg{Y: y, H: h, Class: "s" + strconv.Itoa(min(s, maxSeries))})
			parts = append(parts, series[s]+" "+thousands(v))
		}
		b.Title = names[i] + ": " + thousands(b.Total)
		if len(series) > 1 && len(parts) > 0 {
			b.Title += " (" + strings.Join(parts, ", ") + ")"
		}
		c.Bars = append(c.Bars, b)
	}
	return c
}

// niceCeil rounds n up to 1, 2 or 5 times a power of ten (at least 4, so
// the four grid lines fall on whole numbers).
func niceCeil(n int) int {
	if n <= 4 {
		return 4
	}
	p := 1
	for p*10 < n {
		p *= 10
	}
	for _, m := range []int{1, 2, 4, 5, 10} {
		if m*p >= n {
			return m * p
		}
	}
	return 10 * p
}

// compact writes an axis figure short: 1200 → 1.2k, 3000000 → 3M.
func compact(n int) string {
	switch {
	case n >= 1_000_000:
		return trimZero(float64(n)/1e6) + "M"
	case n >= 10_000:
		return trimZero(float64(n)/1e3) + "k"
	default:
		return thousands(n)
	}
}

func trimZero(f float64) string {
	return strings.TrimSuffix(strconv.FormatFloat(f, 'f', 1, 64), ".0")
}

func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// seriesOf picks the CAs charted as their own series, those with the most
// certificates first, the rest folded into "other CAs"; it returns the
// series names and each CA's series index.
func seriesOf(totals map[string]int, caNames map[string]string) ([]string, map[string]int) {
	ids := make([]string, 0, len(totals))
	for id := range totals {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b string) int {
		if totals[a] != totals[b] {
			return totals[b] - totals[a]
		}
		return strings.Compare(firstNonEmpty(caNames[a], a), firstNonEmpty(caNames[b], b))
	})
	idx := map[string]int{}
	var names []string
	for i, id := range ids {
		if i < maxSeries || len(ids) == maxSeries+1 {
			idx[id] = len(names)
			names = append(names, firstNonEmpty(caNames[id], id))
		} else {
			idx[id] = maxSeries
		}
	}
	if len(ids) > maxSeries+1 {
		names = append(names, otherSeriesLabel)
	}
	return names, idx
}

// expiryTimeline charts the valid certificates not yet renewed by week of
// expiry (UTC days, this week starting today) for the next 13 weeks,
// stacked by CA; each bar links to its week of the inventory.
func expiryTimeline(days []inventory.DayCount, today time.Time, caNames map[string]string) *chart {
	end := today.AddDate(0, 0, 7*timelineWeeks)
	totals := map[string]int{}
	for _, d := range days {
		if !d.Renewed && d.Day.Before(end) {
			totals[d.CAID] += d.N
		}
	}
	series, idx := seriesOf(totals, caNames)
	values := make([][]int, timelineWeeks)
	names := make([]string, timelineWeeks)
	labels := make([]string, timelineWeeks)
	hrefs := make([]string, timelineWeeks)
	for w := range values {
		values[w] = make([]int, len(series))
		from := today.AddDate(0, 0, 7*w)
		to := from.AddDate(0, 0, 7)
		names[w] = from.Format(dayLayout) + " to " + to.AddDate(0, 0, -1).Format(dayLayout)
		if w%2 == 0 {
			labels[w] = from.Format("Jan 2")
		}
		hrefs[w] = expiryLink(from, to)
	}
	for _, d := range days {
		if d.Renewed || d.Day.Before(today) || !d.Day.Before(end) {
			continue
		}
		w := int(d.Day.Sub(today) / (7 * 24 * time.Hour))
		values[w][idx[d.CAID]] += d.N
	}
	return barChart("timeline", "Expiring by week", "Valid certificates not yet renewed, by week of expiry (UTC days; this week's bar begins today), for the next 13 weeks, stacked by CA.",
		series, names, labels, hrefs, values)
}

// daysLeftBands are the distribution's bands of days left: [from, to).
var daysLeftBands = []struct {
	from, to int
	label    string
}{{0, 8, "0–7"}, {8, 15, "8–14"}, {15, 31, "15–30"}, {31, 61, "31–60"}, {61, 91, "61–90"}, {91, 181, "91–180"}, {181, 366, "181–365"}, {366, 0, "366+"}}

// daysLeft charts the valid certificates not yet renewed by days left
// until expiry (whole UTC days from today), each band a link to its
// certificates.
func daysLeft(days []inventory.DayCount, today time.Time) *chart {
	n := len(daysLeftBands)
	values := make([][]int, n)
	names := make([]string, n)
	labels := make([]string, n)
	hrefs := make([]string, n)
	for i, b := range daysLeftBands {
		values[i] = []int{0}
		names[i], labels[i] = b.label+" days", b.label
		var to time.Time
		if b.to > 0 {
			to = today.AddDate(0, 0, b.to)
		}
		hrefs[i] = expiryLink(today.AddDate(0, 0, b.from), to)
	}
	for _, d := range days {
		if d.Renewed || d.Day.Before(today) {
			continue
		}
		left := int(d.Day.Sub(today) / (24 * time.Hour))
		for i, b := range daysLeftBands {
			if left >= b.from && (b.to == 0 || left < b.to) {
				values[i][0] += d.N
				break
			}
		}
	}
	return barChart("daysleft", "Days left", "Valid certificates not yet renewed, by whole days left until expiry.",
		[]string{"certificates"}, names, labels, hrefs, values)
}

// expiryLink is the inventory of valid certificates not yet renewed that
// expire on UTC days from (inclusive) to to (exclusive; zero: no end).
func expiryLink(from, to time.Time) string {
	q := url.Values{"status": {"valid"}, "current": {"1"}, "sort": {"expiry"}, "expires_from": {from.Format(dayLayout)}}
	if !to.IsZero() {
		q.Set("expires_to", to.Format(dayLayout))
	}
	return "/certificates?" + q.Encode()
}

// activity charts the certificates issued here and the revocations per
// UTC day for the last 30 days, today last.
func activity(issued, revoked []inventory.DayCount, today time.Time, withRevoked bool) *chart {
	first := today.AddDate(0, 0, -(activityDays - 1))
	series := []string{"issued"}
	if withRevoked {
		series = append(series, "revoked")
	}
	values := make([][]int, activityDays)
	names := make([]string, activityDays)
	labels := make([]string, activityDays)
	for i := range values {
		values[i] = make([]int, len(series))
		d := first.AddDate(0, 0, i)
		names[i] = d.Format(dayLayout)
		if (activityDays-1-i)%7 == 0 {
			labels[i] = d.Format("Jan 2")
		}
	}
	add := func(dcs []inventory.DayCount, s int) {
		for _, d := range dcs {
			if i := int(d.Day.Sub(first) / (24 * time.Hour)); !d.Day.Before(first) && i < activityDays {
				values[i][s] += d.N
			}
		}
	}
	add(issued, 0)
	desc := "Certificates issued here per UTC day, over the last 30 days."
	if withRevoked {
		add(revoked, 1)
		desc = "Certificates issued here and revocations per UTC day, over the last 30 days, stacked."
	}
	return barChart("activity", "Issued and revoked per day", desc, series, names, labels, nil, values)
}
