package delivery

import (
	"context"
	"fmt"
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

// ledger stores the settlements sent to it in groups, one group at a time,
// until in is closed.
func (p *Pipeline) ledger(ctx context.Context, in <-chan *settlement) {
	var group []*settlement
	for s := range in {
		group = append(group[:0], s)
	more:
		for {
			select {
			case s, ok := <-in:
				if !ok {
					break more
				}
				group = append(group, s)
			default:
				break more
			}
		}
		err := p.settle(ctx, group)
		for _, s := range group {
			s.done <- err
		}
		clear(group)
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
