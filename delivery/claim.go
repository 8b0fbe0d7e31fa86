package delivery

import (
	"context"
	"errors"
	"fmt"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/syncstate"
)

// claimant is the local record whose link e refused.
func claimant(e *syncstate.LinkConflictError) syncstate.LinkRef {
	return syncstate.LinkRef{System: e.System, Object: e.Object, Table: e.ClaimantTable, Key: e.ClaimantKey}
}

// A system answers a write with the id of a record another local record is
// linked to when the two share a value the system keeps unique (a
// contact's email). The usual cause: a record deleted and made again
// locally, whose re-create was upserted (or refused as a duplicate) before
// the old record's delete reached the system, which then answers with the
// old record's id. Both local records cannot hold the id, and the old
// record's delete, still on its way, will archive it. So the claimant is
// not linked: it is dead-lettered at once, alone, with what to do, and the
// rest of the batch is linked and goes on. The letter keeps the id it
// claimed (DeadLetter.ClaimedID); once the pipeline delivers the old
// record's delete, it marks such letters for replay (ClaimReplayer), and
// the replay creates the record anew, as if the delete had come first.
// When the old record's delete leaves the system's record live (on_delete
// clear or ignore, or a delete skipped because a conflict holds the old
// record: see releaseHeld), the old link is Deleted all the same and the
// replay links the claimant to the record the system kept, which it takes
// for the same one.
// When both local records exist, the duplicate value is the local data's
// to fix; the letter says so.

// replayClaims marks for replay the dead letters that claimed the ids of
// the deletes among vs that were delivered.
func (p *Pipeline) replayClaims(ctx context.Context, vs []verdict) error {
	var ids []syncstate.ExternalRef
	for _, v := range vs {
		if v.skip == "" && v.err == nil && v.it.rec.Op == cdc.OpDelete && v.extID != "" {
			ids = append(ids, syncstate.ExternalRef{Object: v.it.rec.Object, ID: v.extID})
		}
	}
	return p.replayIDs(ctx, ids)
}

// replayIDs marks for replay the dead letters that claimed one of ids.
func (p *Pipeline) replayIDs(ctx context.Context, ids []syncstate.ExternalRef) error {
	r, ok := p.st.DeadLetters.(syncstate.ClaimReplayer)
	if !ok || len(ids) == 0 {
		return nil
	}
	n, err := r.ReplayClaims(ctx, p.cfg.Name, ids)
	if err != nil {
		return err
	}
	if n > 0 {
		p.log.Info().Int("letters", n).Msg("dead letters that claimed the id of a deleted record marked for replay")
	}
	return nil
}

// releaseHeld stores, for the deletes of records held by an open conflict
// (skipped: the system keeps the record), their links as Deleted, and
// marks for replay the dead letters that claimed their ids. The local
// record is gone, so its link no longer holds the id: a record that
// claimed it (a re-create with the same email, which the system takes for
// the same record) is replayed and linked to it. items are the skipped
// items, links their links as read.
func (p *Pipeline) releaseHeld(ctx context.Context, items []*item, links map[syncstate.LinkRef]*syncstate.Link) error {
	var put []syncstate.Link
	var ids []syncstate.ExternalRef
	for _, it := range items {
		ref, ok := it.ref(p.cfg.System)
		l := links[ref]
		if !ok || it.rec.Op != cdc.OpDelete || l == nil || l.Deleted || l.ExternalID == "" {
			continue
		}
		d := *l
		d.Deleted, d.Base, d.LSN = true, nil, it.rec.Event.Pos.CommitLSN
		put = append(put, d)
		ids = append(ids, syncstate.ExternalRef{Object: ref.Object, ID: l.ExternalID})
	}
	if len(put) == 0 {
		return nil
	}
	if err := p.st.Links.Put(ctx, put); err != nil {
		return fmt.Errorf("store %d links of held deletes: %w", len(put), err)
	}
	return p.replayIDs(ctx, ids)
}

// releaseHeldVerdicts is releaseHeld for the deletes among vs that a
// conflict opened since their first attempt held.
func (p *Pipeline) releaseHeldVerdicts(ctx context.Context, vs []verdict) error {
	var items []*item
	var refs []syncstate.LinkRef
	for _, v := range vs {
		if ref, ok := v.it.ref(p.cfg.System); ok && v.skip == heldReason && v.it.rec.Op == cdc.OpDelete && p.st.Links != nil {
			items, refs = append(items, v.it), append(refs, ref)
		}
	}
	if len(items) == 0 {
		return nil
	}
	links, err := p.st.Links.Get(ctx, refs)
	if err != nil {
		return fmt.Errorf("look up %d links of held deletes: %w", len(refs), err)
	}
	return p.releaseHeld(ctx, items, links)
}

// linkConflicts returns the conflicts err joins, and false when err holds
// anything else.
func linkConflicts(err error) ([]*syncstate.LinkConflictError, bool) {
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	out := make([]*syncstate.LinkConflictError, 0, len(errs))
	for _, e := range errs {
		var c *syncstate.LinkConflictError
		if !errors.As(e, &c) {
			return nil, false
		}
		out = append(out, c)
	}
	return out, true
}

// claimError is the permanent error of a record whose write the system
// answered with an id another local record holds.
func claimError(c *syncstate.LinkConflictError) error {
	return cdc.Permanent(fmt.Errorf("%s answered with %s id %s, which is linked to %s %s, so %s %s was not linked "+
		"(%s id %s has its values now). If %s %s was deleted, its delete had not reached %s yet: once it is delivered (or skipped "+
		"while a conflict holds that record), cdcd replays this dead letter (cdcd dlq replay ID does the same). If both records "+
		"exist, they share a value %s keeps unique (a contact's email): make it unique locally, then replay: %w",
		c.System, c.Object, c.ExternalID, c.HolderTable, c.HolderKey, c.ClaimantTable, c.ClaimantKey,
		c.System, c.ExternalID, c.HolderTable, c.HolderKey, c.System, c.System, c))
}
