package delivery

import (
	"context"
	"errors"
	"fmt"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/syncstate"
)

// A create sent to a system may be applied though cdcd never learns it
// (a timeout, a lost connection, a kill before the answer, an answer that
// cannot be matched). For a Settler, the pipeline records each create as
// pending before the Writer call and clears it once the record is linked
// or its error shows nothing was applied; a later write of a pending
// record, after a restart too, carries Record.Unsettled so that the writer
// looks the record up instead of creating it again.

// pendingCreates returns which of the items' records that have no live
// link have a pending create.
func (p *Pipeline) pendingCreates(ctx context.Context, items []*item, links map[syncstate.LinkRef]*syncstate.Link) (map[syncstate.LinkRef]bool, error) {
	if p.settler == nil || p.st.Pending == nil {
		return nil, nil
	}
	seen := make(map[syncstate.LinkRef]bool, len(items))
	var refs []syncstate.LinkRef
	for _, it := range items {
		ref, ok := it.ref(p.cfg.System)
		if !ok || seen[ref] || (links[ref] != nil && links[ref].Base != nil) || !p.settler.SettlesCreate(&it.rec) {
			continue
		}
		seen[ref] = true
		refs = append(refs, ref)
	}
	if len(refs) == 0 {
		return nil, nil
	}
	pending, err := p.st.Pending.Pending(ctx, refs)
	if err != nil {
		return nil, fmt.Errorf("look up %d pending creates: %w", len(refs), err)
	}
	return pending, nil
}

// isCreate reports whether rec, about to be written, creates its record.
func isCreate(rec *Record) bool {
	return rec.ExternalID == "" && rec.Op != cdc.OpDelete
}

// settlesCreate reports whether rec, about to be written, is a create the
// Writer wants settled.
func (p *Pipeline) settlesCreate(rec *Record) bool {
	return p.settler != nil && isCreate(rec) && p.settler.SettlesCreate(rec)
}

// beginCreates marks the creates among the records to be written (neither
// held nor skipped): a record already pending is Unsettled (unless
// replayed), the others are recorded as pending before they are sent.
func (p *Pipeline) beginCreates(ctx context.Context, qs []*keyQueue, recs []Record, hold []error, skip []string, replay bool) error {
	if p.settler == nil {
		return nil
	}
	var refs []syncstate.LinkRef
	var begun []*keyQueue
	for i, q := range qs {
		if hold[i] != nil || skip[i] != "" || !p.settlesCreate(&recs[i]) {
			continue
		}
		if q.pending {
			recs[i].Unsettled = !replay
			continue
		}
		if ref, ok := q.items[0].ref(p.cfg.System); ok {
			refs = append(refs, ref)
		}
		begun = append(begun, q)
	}
	if len(refs) > 0 && p.st.Pending != nil {
		if err := p.st.Pending.Begin(ctx, refs); err != nil {
			return fmt.Errorf("record %d pending creates: %w", len(refs), err)
		}
	}
	for _, q := range begun {
		q.pending = true
	}
	return nil
}

// settleCreates clears the pending creates that the verdicts settle: the
// record was written, or failed with an error showing nothing was applied
// while no earlier create was pending. It returns the refs to forget.
func (p *Pipeline) settleCreates(recs []Record, vs []verdict) []syncstate.LinkRef {
	if p.settler == nil {
		return nil
	}
	var refs []syncstate.LinkRef
	for i, v := range vs {
		q := v.q
		if !q.pending || !isCreate(&recs[i]) || v.skip != "" {
			continue
		}
		var unlinked *unlinkedError
		if v.err != nil && (errors.Is(v.err, ErrOutcomeUnknown) || recs[i].Unsettled || errors.As(v.err, &unlinked)) {
			continue
		}
		q.pending = false
		if ref, ok := v.it.ref(p.cfg.System); ok {
			refs = append(refs, ref)
		}
	}
	return refs
}

// forgetCreates clears settled pending creates in the store.
func (p *Pipeline) forgetCreates(ctx context.Context, refs []syncstate.LinkRef) error {
	if len(refs) == 0 || p.st.Pending == nil {
		return nil
	}
	if err := p.st.Pending.Settle(ctx, refs); err != nil {
		return fmt.Errorf("clear %d pending creates: %w", len(refs), err)
	}
	return nil
}
