package delivery

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/cdcd-dev/cdcd/syncstate"
)

// The bookkeeping of Writer calls (links, dead letters, audit, settled
// pending creates) is committed in groups: while one group is being
// stored, the calls that return meanwhile queue theirs, and the next group
// stores them all with one statement per store. A call's records count as
// settled (their key's next record may be written, the Write may return)
// only once its group is stored, as when each call stored its own; what a
// crash can lose is the same: records whose system answered and whose
// links were not stored yet, written again after the restart (pending
// creates make that safe for writers whose creates are not idempotent).

// settlement is the bookkeeping of one Writer call, and what the ledger
// needs to report the call once it is stored.
type settlement struct {
	vs      []verdict
	results []Result
	took    time.Duration
	end     time.Time
	replay  bool
	forget  []syncstate.LinkRef // pending creates the call settled
	qs      []*keyQueue         // the queues whose heads the call wrote
	more    bool                // qs hold more to write
}

// book is a run's ledger: where its Writer calls send their settlements,
// how many calls are in flight, and where the calls are reported.
type book struct {
	in      chan *settlement
	reports chan<- []report
	calling atomic.Int64
	// next is set while the run has records ready for calls it is about
	// to make: no call in flight then is a moment between two calls.
	next atomic.Bool
	// maybeIdle has a token once the run may have become idle (its last
	// call in flight ended, or it has no more calls to make); capacity 1.
	maybeIdle chan struct{}
}

func newBook(size int, reports chan<- []report) *book {
	return &book{in: make(chan *settlement, size), reports: reports, maybeIdle: make(chan struct{}, 1)}
}

// dispatching says whether the run is about to make more calls.
func (b *book) dispatching(more bool) {
	if b.next.Swap(more) && !more {
		b.wake()
	}
}

// idle reports whether no Writer call is in flight or about to start.
func (b *book) idle() bool { return b.calling.Load() == 0 && !b.next.Load() }

// call counts a Writer call about to start; end counts it over.
func (b *book) call() { b.calling.Add(1) }

func (b *book) end() {
	if b.calling.Add(-1) == 0 {
		b.wake()
	}
}

func (b *book) wake() {
	select {
	case b.maybeIdle <- struct{}{}:
	default:
	}
}

// linger bounds how long a settlement waits for the Writer calls in
// flight before its group is stored without them.
const linger = 100 * time.Millisecond

// ledger stores the settlements sent to b in groups, one group at a time,
// until b.in is closed, and sends the reports of each group's calls to
// b.reports once it is stored (or failed). A group is stored once no
// Writer call is in flight and none is about to start (their settlements
// would join the next group a moment later), or once its first
// settlement waited linger: so a Write of records of distinct keys
// usually stores its bookkeeping in one group, after its last call. While
// a group waits, the settlements that come meanwhile stay queued in b.in
// (which has room for every call's) until the group is stored: the ledger
// wakes once the run may be idle or the linger is over, not per call.
func (p *Pipeline) ledger(ctx context.Context, b *book) {
	var group []*settlement
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	open := true
	for open || len(group) > 0 {
		if len(group) == 0 && open {
			s, ok := <-b.in
			if !ok {
				open = false
				continue
			}
			group = append(group, s)
			timer.Reset(linger)
			// A settlement that waits for others wakes the ledger when the
			// run may be idle; an earlier token is stale.
			select {
			case <-b.maybeIdle:
			default:
			}
		}
		due := false
		for !due && open && !b.idle() {
			select {
			case <-b.maybeIdle:
			case <-timer.C:
				due = true
			}
		}
		timer.Stop()
		for drained := false; open && !drained; {
			select {
			case s, ok := <-b.in:
				if !ok {
					open = false
					break
				}
				group = append(group, s)
			default:
				drained = true
			}
		}
		err := p.settle(ctx, group)
		reports := make([]report, len(group))
		for i, s := range group {
			if err != nil {
				reports[i] = report{err: err, more: s.more}
			} else {
				reports[i] = p.advance(s.qs, s.vs, s.results, s.more)
			}
		}
		b.reports <- reports
		clear(group)
		group = group[:0]
	}
}

// settle records the verdicts of a group of Writer calls: links for
// delivered records (and the recent writes they imply), dead letters (or,
// for a replay, the dead letters' resolution), the audit trail and the
// pending creates settled, in one transaction of the stores when they
// have one (Stores.Tx): one commit per group. A delivered record whose
// link would claim an external id another local record holds becomes a
// dead letter (see claimError): the group is stored again without its
// link. While the dead-letter store fails, the group is stored again with
// backoff until it takes the letters (see putDeadLetters). It updates the
// verdicts of refused records.
func (p *Pipeline) settle(ctx context.Context, group []*settlement) error {
	refused := map[syncstate.LinkRef]*syncstate.LinkConflictError{}
	for try := 1; ; {
		err := p.inTx(ctx, func(ctx context.Context) error { return p.store(ctx, group, refused) })
		var r *refusal
		var d *deadStoreError
		switch {
		case err == nil:
			p.deadStoreUp()
			return nil
		case errors.As(err, &r):
			grew := false
			for _, c := range r.conflicts {
				if ref := claimant(c); refused[ref] == nil {
					refused[ref], grew = c, true
				}
			}
			if !grew {
				return r.err // the conflicts name no link of the group: a store bug
			}
		case errors.As(err, &d):
			if !p.deadStoreDown(ctx, d.err, try, d.n) {
				return d.err
			}
			try++
		default:
			return err
		}
	}
}

// inTx runs fn in one transaction of the stores, when they have one.
func (p *Pipeline) inTx(ctx context.Context, fn func(ctx context.Context) error) error {
	if p.st.Tx == nil {
		return fn(ctx)
	}
	return p.st.Tx(ctx, fn)
}

// refusal is a store of links that refused some: each claims an external
// id another local record holds.
type refusal struct {
	conflicts []*syncstate.LinkConflictError
	err       error
}

func (r *refusal) Error() string { return r.err.Error() }
func (r *refusal) Unwrap() error { return r.err }

// deadStoreError is the dead-letter store failing to take n letters.
type deadStoreError struct {
	err error
	n   int
}

func (d *deadStoreError) Error() string { return d.err.Error() }
func (d *deadStoreError) Unwrap() error { return d.err }

// store stores the bookkeeping of group, but the links of refused
// records, which it dead-letters: see settle.
func (p *Pipeline) store(ctx context.Context, group []*settlement, refused map[syncstate.LinkRef]*syncstate.LinkConflictError) error {
	n := 0
	for _, s := range group {
		n += len(s.vs)
	}
	links := make([]syncstate.Link, 0, n)
	for _, s := range group {
		for i := range s.vs {
			v := &s.vs[i]
			if v.skip != "" || v.err != nil {
				continue
			}
			ref, ok := v.it.ref(p.cfg.System)
			if c := refused[ref]; ok && c != nil {
				v.err, v.class, v.extID = claimError(c), "permanent", ""
				continue
			}
			if ok && v.extID != "" {
				links = append(links, p.link(ref, v.it, v.extID, s.results[i].Version, v.encoded, s.end))
			}
		}
	}
	if len(links) > 0 && p.st.Links != nil {
		if err := p.st.Links.Put(ctx, links); err != nil {
			if conflicts, ok := linkConflicts(err); ok {
				return &refusal{conflicts: conflicts, err: err}
			}
			return fmt.Errorf("store %d links: %w", len(links), err)
		}
	}
	var letters []syncstate.DeadLetter
	outcomes := make([]syncstate.Outcome, 0, n)
	all := make([]verdict, 0, n)
	var forget []syncstate.LinkRef
	var replayed []verdict
	for _, s := range group {
		for _, v := range s.vs {
			it := v.it
			switch {
			case v.skip != "":
				outcomes = append(outcomes, p.outcome(it, syncstate.StatusSkipped, s.end, s.took, v.skip))
			case v.err == nil:
				status := syncstate.StatusDelivered
				if s.replay {
					status = syncstate.StatusReplayed
				}
				outcomes = append(outcomes, p.outcome(it, status, s.end, s.took, ""))
			case !v.readyAt.IsZero():
				outcomes = append(outcomes, p.outcome(it, syncstate.StatusRetried, s.end, s.took, errorText(v.err)))
			default:
				dl := p.deadLetter(it, v.err, s.end)
				if !s.replay {
					letters = append(letters, dl)
				}
				outcomes = append(outcomes, p.outcome(it, syncstate.StatusDeadLettered, s.end, s.took, dl.Error))
			}
		}
		if s.replay {
			replayed = append(replayed, s.vs...)
		}
		all = append(all, s.vs...)
		forget = append(forget, s.forget...)
	}
	if len(letters) > 0 {
		if p.st.DeadLetters == nil {
			p.log.Warn().Int("records", len(letters)).Msg("no dead-letter store; undeliverable records dropped")
		} else if err := p.st.DeadLetters.Put(ctx, letters); err != nil {
			return &deadStoreError{err: fmt.Errorf("store %d dead letters: %w", len(letters), err), n: len(letters)}
		}
	}
	if err := p.resolve(ctx, replayed); err != nil {
		return err
	}
	if err := p.replayClaims(ctx, all); err != nil {
		return err
	}
	if err := p.releaseHeldVerdicts(ctx, all); err != nil {
		return err
	}
	if err := p.audit(ctx, outcomes); err != nil {
		return err
	}
	return p.forgetCreates(ctx, forget)
}
