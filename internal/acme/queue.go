package acme

import (
	"context"
	"errors"
	"sync"
)

// The validation queue is fair per account: a worker takes the next job
// round-robin over the accounts with work waiting, and skips an account
// already running its share, so one account's backlog (say, challenges
// against a tarpit that holds every connection for the full timeout) cannot
// delay another account's validation. Jobs in flight (waiting or running)
// are counted per account and per target, and a challenge past either
// limit is refused with rateLimited, before it leaves pending.
//
// Accounts cost nothing to create, so per-account limits alone let many
// accounts (Sybils) fill the queue. Two more limits hold for accounts
// without an external account binding (anonymous ones): their jobs in
// flight are counted per source address (the address of the request that
// answered the challenge; IPv6 by /64), and together they may fill at most
// three quarters of the queue, so that accounts bound by an operator's key
// always find room.

// Errors of queue.reserve.
var (
	errQueueFull      = errors.New("acme: validation queue full")
	errAccountBacklog = errors.New("acme: account has too many validations in flight")
	errTargetBacklog  = errors.New("acme: target has too many validations in flight")
	errSourceBacklog  = errors.New("acme: source address has too many validations in flight")
	errAnonymousFull  = errors.New("acme: the validation queue's share for accounts without external account binding is full")
)

// queueLimits bound the queue; every field is positive.
type queueLimits struct {
	total            int // jobs waiting, all accounts
	perAccount       int // jobs in flight per account
	perTarget        int // jobs in flight per target, all accounts
	runningAccount   int // jobs running at once per account
	runningPerTarget int // jobs running at once per target
	perSource        int // jobs in flight per source address, anonymous accounts
}

// anonymousShare is how much of the queue anonymous accounts may fill
// together: three quarters, at least one job.
func (l queueLimits) anonymousShare() int { return max(1, l.total*3/4) }

// queue holds validation jobs. It is safe for concurrent use.
type queue struct {
	lim queueLimits

	mu       sync.Mutex
	waiting  map[string][]job // per account, oldest first
	ring     []string         // accounts with waiting jobs, in turn order
	next     int              // ring index of the next account to serve
	queued   int
	anon     int            // of queued, jobs of anonymous accounts
	inflight map[string]int // per account: reserved, waiting or running
	sources  map[string]int // per source, anonymous accounts: reserved, waiting or running
	targets  map[string]int // per target: reserved, waiting or running
	running  map[string]int // per account
	runningT map[string]int // per target
	wake     chan struct{}  // closed and replaced when work may be takeable
}

func newQueue(lim queueLimits) *queue {
	return &queue{
		lim: lim, waiting: map[string][]job{}, inflight: map[string]int{}, targets: map[string]int{}, sources: map[string]int{},
		running: map[string]int{}, runningT: map[string]int{}, wake: make(chan struct{}),
	}
}

// reserve claims an in-flight slot for job j (its account, target, source
// and binding); the caller then submits j or releases the slot. alone
// reports that j is its account's only job in flight.
func (q *queue) reserve(j job) (alone bool, err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	switch {
	case q.queued >= q.lim.total:
		return false, errQueueFull
	case !j.bound && q.anon >= q.lim.anonymousShare():
		return false, errAnonymousFull
	case q.inflight[j.accountID] >= q.lim.perAccount:
		return false, errAccountBacklog
	case !j.bound && q.sources[j.source] >= q.lim.perSource:
		return false, errSourceBacklog
	case q.targets[j.target] >= q.lim.perTarget:
		return false, errTargetBacklog
	}
	q.inflight[j.accountID]++
	q.targets[j.target]++
	q.queued++ // counted as waiting until picked or released
	if !j.bound {
		q.sources[j.source]++
		q.anon++
	}
	return q.inflight[j.accountID] == 1, nil
}

// release gives back a slot reserve claimed for a job never submitted.
func (q *queue) release(j job) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.unqueue(j)
}

// unqueue gives back the slot of job j, waiting or reserved. q.mu is held.
func (q *queue) unqueue(j job) {
	q.queued--
	dec(q.inflight, j.accountID)
	dec(q.targets, j.target)
	if !j.bound {
		q.anon--
		dec(q.sources, j.source)
	}
}

// admit queues a job taken over from another replica (or a previous
// life of this one): it was admitted under the limits when its challenge
// was answered, so only the queue's size, which the taker checked with
// room, bounds it.
func (q *queue) admit(j job) {
	q.mu.Lock()
	q.inflight[j.accountID]++
	q.targets[j.target]++
	q.queued++
	if !j.bound {
		q.sources[j.source]++
		q.anon++
	}
	q.mu.Unlock()
	q.submit(j)
}

// room is how many more jobs the queue takes.
func (q *queue) room() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return max(0, q.lim.total-q.queued)
}

// drain removes and returns every waiting job, giving back their slots.
func (q *queue) drain() []job {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []job
	for _, acct := range q.ring {
		for _, j := range q.waiting[acct] {
			out = append(out, j)
			q.unqueue(j)
		}
		delete(q.waiting, acct)
	}
	q.ring, q.next = nil, 0
	return out
}

// submit queues a job whose slot is reserved.
func (q *queue) submit(j job) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.waiting[j.accountID]) == 0 {
		q.ring = append(q.ring, j.accountID)
	}
	q.waiting[j.accountID] = append(q.waiting[j.accountID], j)
	q.signal()
}

// take returns the next job to run, waiting until there is one or ctx ends.
func (q *queue) take(ctx context.Context) (job, bool) {
	for {
		if ctx.Err() != nil {
			return job{}, false
		}
		q.mu.Lock()
		if j, ok := q.pick(); ok {
			q.mu.Unlock()
			return j, true
		}
		wake := q.wake
		q.mu.Unlock()
		select {
		case <-ctx.Done():
			return job{}, false
		case <-wake:
		}
	}
}

// pick takes, round-robin from q.next, the first waiting job whose account
// and target are below their running limits. q.mu is held.
func (q *queue) pick() (job, bool) {
	for n := range len(q.ring) {
		i := (q.next + n) % len(q.ring)
		acct := q.ring[i]
		if q.running[acct] >= q.lim.runningAccount {
			continue
		}
		jobs := q.waiting[acct]
		for k, j := range jobs {
			if q.runningT[j.target] >= q.lim.runningPerTarget {
				continue
			}
			jobs = append(jobs[:k:k], jobs[k+1:]...)
			q.running[acct]++
			q.runningT[j.target]++
			q.queued--
			if !j.bound {
				q.anon--
			}
			if len(jobs) == 0 {
				delete(q.waiting, acct)
				q.ring = append(q.ring[:i:i], q.ring[i+1:]...)
				q.next = i
			} else {
				q.waiting[acct] = jobs
				q.next = i + 1
			}
			if len(q.ring) > 0 {
				q.next %= len(q.ring)
			} else {
				q.next = 0
			}
			return j, true
		}
	}
	return job{}, false
}

// done ends a job pick handed out.
func (q *queue) done(j job) {
	q.mu.Lock()
	defer q.mu.Unlock()
	dec(q.running, j.accountID)
	dec(q.runningT, j.target)
	dec(q.inflight, j.accountID)
	dec(q.targets, j.target)
	if !j.bound {
		dec(q.sources, j.source)
	}
	q.signal()
}

// setLimits replaces the limits; jobs already in flight stay, and workers
// wake in case a raised running limit lets them take more.
func (q *queue) setLimits(lim queueLimits) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.lim = lim
	q.signal()
}

// signal wakes every waiting worker. q.mu is held.
func (q *queue) signal() {
	close(q.wake)
	q.wake = make(chan struct{})
}

func dec(m map[string]int, k string) {
	if m[k] <= 1 {
		delete(m, k)
		return
	}
	m[k]--
}
