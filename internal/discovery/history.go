package discovery

import (
	"time"
)

// Endpoint is one endpoint as the scans know it: its latest reachable
// observation and what it was matched to.
type Endpoint struct {
	// Address is the endpoint's key (Observation.Key): host:port.
	Address string `json:"address"`
	// Latest is the newest observation of it reachable.
	Latest Observation `json:"latest"`
	// Match is the served leaf's reconciliation; nil when none was served.
	Match     *Match    `json:"match,omitempty"`
	FirstSeen time.Time `json:"first_seen"`
	// LastSeen is the newest scan that reached it; LastScanned the newest
	// that tried.
	LastSeen    time.Time `json:"last_seen"`
	LastScanned time.Time `json:"last_scanned"`
	// Misses counts the scans in a row that did not reach it; LastError
	// is why the last one did not.
	Misses    int    `json:"misses,omitempty"`
	LastError string `json:"last_error,omitempty"`
	// Gone is set once it was missed DisappearAfter scans in a row.
	Gone bool `json:"gone,omitempty"`
	// ExposedSince is when it was found plaintext or weak; zero when it
	// is neither.
	ExposedSince time.Time `json:"exposed_since,omitzero"`
	// Configured: the endpoint is one of the configured targets'
	// (scan.targets), recorded by the scheduled scan or named by them.
	// Only such an endpoint counts the scheduled scan's misses; one found
	// only by a scan asked for through the API is not that scan's to miss.
	Configured bool `json:"configured,omitempty"`
	// DiscoveredAt is when the endpoint last added a certificate to the
	// inventory as discovered: at most one a day.
	DiscoveredAt time.Time `json:"discovered_at,omitzero"`
	// Served is the served_* problem going on at the endpoint; nil when
	// there is none.
	Served *ServedProblem `json:"served_problem,omitempty"`
}

// EventKind names a change in an endpoint's history.
type EventKind string

// Event kinds.
const (
	EventAppeared          EventKind = "appeared"
	EventDisappeared       EventKind = "disappeared"
	EventCertChanged       EventKind = "certificate_changed"
	EventGradeChanged      EventKind = "grade_changed"
	EventEncryptionChanged EventKind = "encryption_changed"
	// EventExposed: the endpoint became plaintext or weak.
	EventExposed EventKind = "exposed"
	// EventRemediated: it no longer is (or disappeared); Since is when it
	// was found exposed.
	EventRemediated EventKind = "remediated"
)

// Event is one change of one endpoint.
type Event struct {
	Address string    `json:"address"`
	Kind    EventKind `json:"kind"`
	At      time.Time `json:"at"`
	// From and To are the old and new values: fingerprints, grades,
	// encryptions; for exposed, To is plaintext or weak.
	From  string    `json:"from,omitempty"`
	To    string    `json:"to,omitempty"`
	Since time.Time `json:"since,omitzero"`
}

// Exposure names why an observation is exposed, "" when it is not.
func Exposure(o *Observation) string {
	switch {
	case !o.Reachable:
		return ""
	case o.Encryption.Plaintext():
		return "plaintext"
	case o.Weak():
		return "weak"
	}
	return ""
}

// Incomplete reports whether o reached the endpoint without telling what
// it is: the scan failed part way (timed out, detection or grading
// failed) or did not establish what it speaks.
func (o *Observation) Incomplete() bool {
	return o.Reachable && (o.Error != "" || o.Encryption == EncUnknown)
}

// Advance applies o, a new observation of the endpoint prev (nil for one
// never seen), and returns the endpoint as it now stands (nil when o
// reached nothing new) and the changes. An endpoint not reached
// disappearAfter scans in a row is gone. An incomplete observation of a
// known endpoint does not replace its latest one: it changes nothing but
// when it was seen and its LastError, and never ends an exposure.
func Advance(prev *Endpoint, o Observation, disappearAfter int) (*Endpoint, []Event) {
	at := o.ObservedAt.UTC()
	if !o.Reachable {
		if prev == nil {
			return nil, nil
		}
		why := o.Error
		if why == "" {
			why = "not reachable"
		}
		return Miss(prev, at, why, disappearAfter)
	}
	if prev != nil && o.Incomplete() {
		return seenIncomplete(prev, o, at)
	}
	key := o.Key()
	var evs []Event
	ev := func(kind EventKind, from, to string) {
		evs = append(evs, Event{Address: key, Kind: kind, At: at, From: from, To: to})
	}
	var next Endpoint
	if prev == nil {
		next = Endpoint{Address: key, FirstSeen: at}
		ev(EventAppeared, "", string(o.Encryption))
	} else {
		next = *prev
		if prev.Gone {
			ev(EventAppeared, "gone", string(o.Encryption))
		}
		old := &prev.Latest
		if from, to := old.Fingerprint(), o.Fingerprint(); from != to {
			ev(EventCertChanged, from, to)
		}
		if from, to := letter(old.Grade), letter(o.Grade); from != to && to != "" {
			ev(EventGradeChanged, from, to)
		}
		if old.Encryption != o.Encryption {
			ev(EventEncryptionChanged, string(old.Encryption), string(o.Encryption))
		}
	}
	next.Latest = o
	next.LastSeen, next.LastScanned = at, at
	next.Misses, next.LastError, next.Gone = 0, "", false
	exposure := Exposure(&o)
	switch {
	case exposure != "" && next.ExposedSince.IsZero():
		next.ExposedSince = at
		ev(EventExposed, "", exposure)
	case exposure == "" && !next.ExposedSince.IsZero():
		evs = append(evs, Event{Address: key, Kind: EventRemediated, At: at, Since: next.ExposedSince, To: string(o.Encryption)})
		next.ExposedSince = time.Time{}
	}
	return &next, evs
}

// seenIncomplete records that a scan at at reached prev without telling
// what it is (o): the last complete observation, its match and its
// exposure stand.
func seenIncomplete(prev *Endpoint, o Observation, at time.Time) (*Endpoint, []Event) {
	next := *prev
	next.LastSeen, next.LastScanned, next.Misses, next.Gone = at, at, 0, false
	next.LastError = o.Error
	if next.LastError == "" {
		next.LastError = "reached, but what it speaks was not established"
	}
	var evs []Event
	if prev.Gone {
		evs = append(evs, Event{Address: prev.Address, Kind: EventAppeared, At: at, From: "gone", To: string(prev.Latest.Encryption)})
	}
	return &next, evs
}

// Miss records that a scan at at did not reach prev (why), and returns it
// and its changes: gone after disappearAfter misses in a row, which ends
// an exposure as remediated.
func Miss(prev *Endpoint, at time.Time, why string, disappearAfter int) (*Endpoint, []Event) {
	next := *prev
	next.LastScanned, next.LastError = at, why
	if prev.Gone {
		return &next, nil
	}
	next.Misses++
	if next.Misses < max(disappearAfter, 1) {
		return &next, nil
	}
	next.Gone = true
	evs := []Event{{Address: prev.Address, Kind: EventDisappeared, At: at, From: string(prev.Latest.Encryption), To: why}}
	if !next.ExposedSince.IsZero() {
		evs = append(evs, Event{Address: prev.Address, Kind: EventRemediated, At: at, Since: next.ExposedSince, To: "gone"})
		next.ExposedSince = time.Time{}
	}
	return &next, evs
}

func letter(g *Grade) string {
	if g == nil {
		return ""
	}
	return g.Letter
}
