package delivery

import (
	"context"
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

// settlement is the bookkeeping of one Writer call.
type settlement struct {
	vs      []verdict
	results []Result
	took    time.Duration
	end     time.Time
	replay  bool
	forget  []syncstate.LinkRef // pending creates the call settled
	done    chan error
}

// book is a run's ledger: where its Writer calls send their settlements,
// and how many calls are in flight.
type book struct {
	in      chan *settlement
	calling atomic.Int64
	ended   chan struct{} // a call ended; capacity 1
}

func newBook(size int) *book {
	return &book{in: make(chan *settlement, size), ended: make(chan struct{}, 1)}
}

// call counts a Writer call about to start; end counts it over.
func (b *book) call() { b.calling.Add(1) }

func (b *book) end() {
	b.calling.Add(-1)
	select {
	case b.ended <- struct{}{}:
	default:
	}
}

// linger bounds how long a settlement waits for the Writer calls in
// flight before its group is stored without them.
const linger = 100 * time.Millisecond

// ledger stores the settlements sent to b in groups, one group at a time,
// until b.in is closed. A group is stored once no Writer call is in
// flight (their settlements would join the next group a moment later),
// or once its first settlement waited linger: so a Write of records of
// distinct keys usually stores its bookkeeping in one group, after its
// last call.
func (p *Pipeline) ledger(ctx context.Context, b *book) {
	var group []*settlement
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var due <-chan time.Time
	open := true
	add := func(s *settlement, ok bool) {
		if !ok {
			open = false
			return
		}
		if len(group) == 0 {
			timer.Reset(linger)
			due = timer.C
		}
		group = append(group, s)
	}
	for open || len(group) > 0 {
		for drained := false; open && !drained; {
			select {
			case s, ok := <-b.in:
				add(s, ok)
			default:
				drained = true
			}
		}
		if len(group) > 0 && (b.calling.Load() == 0 || !open || due == nil) {
			timer.Stop()
			due = nil
			err := p.settle(ctx, group)
			for _, s := range group {
				s.done <- err
			}
			clear(group)
			group = group[:0]
			continue
		}
		if !open {
			continue
		}
		select {
		case s, ok := <-b.in:
			add(s, ok)
		case <-b.ended:
		case <-due:
			due = nil
		}
	}
}

// settle records the verdicts of a group of Writer calls: links for
// delivered records, dead letters (or, for a replay, the dead letters'
// resolution), the audit trail and the pending creates settled. A
// delivered record whose link would claim an external id another local
// record holds becomes a dead letter (see putLinks). It updates the
// verdicts of such records.
func (p *Pipeline) settle(ctx context.Context, group []*settlement) error {
	var links []syncstate.Link
	for _, s := range group {
		for i, v := range s.vs {
			if v.skip != "" || v.err != nil {
				continue
			}
			if ref, ok := v.it.ref(p.cfg.System); ok && v.extID != "" {
				links = append(links, p.link(ref, v.it, v.extID, s.results[i].Version, s.end))
			}
		}
	}
	if len(links) > 0 && p.st.Links != nil {
		refused, err := p.putLinks(ctx, links)
		if err != nil {
			return fmt.Errorf("store %d links: %w", len(links), err)
		}
		for _, s := range group {
			for i := range s.vs {
				v := &s.vs[i]
				ref, ok := v.it.ref(p.cfg.System)
				if c := refused[ref]; ok && c != nil && v.skip == "" && v.err == nil {
					v.err, v.class, v.extID = claimError(c), "permanent", ""
				}
			}
		}
	}
	var letters []syncstate.DeadLetter
	var outcomes []syncstate.Outcome
	var all []verdict
	var forget []syncstate.LinkRef
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
			if err := p.resolve(ctx, s.vs); err != nil {
				return err
			}
		}
		all = append(all, s.vs...)
		forget = append(forget, s.forget...)
	}
	if err := p.putDeadLetters(ctx, letters); err != nil {
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
