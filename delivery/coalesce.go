package delivery

import (
	"maps"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/syncstate"
)

// coalesce collapses the items of each keyed record into one carrying its
// latest state, and returns the skipped outcomes of the events that were
// folded into a later one. Records without a key are kept as they are.
//
// The rules, applied pairwise in order:
//   - anything followed by a delete is that delete;
//   - a delete followed by a create or update is that change alone (the
//     record is written anew, nothing before the delete survives);
//   - a create (or snapshot read) followed by updates stays a create with
//     the latest fields;
//   - updates merge into the latest update.
//
// A delete that a create was folded into is marked born: when the record
// has no external id and no create in doubt, the record lived and died
// before delivery and nothing is written (see attempt).
//
// When changes merge, the later change's fields win, and fields it lacks
// (unchanged TOASTed columns) keep their earlier values. The merged record
// carries the latest event: its id, position and commit LSN.
func (p *Pipeline) coalesce(items []*item, now time.Time) ([]*item, []syncstate.Outcome) {
	at := make(map[identity]int, len(items))
	last := make([]*item, 0, len(items)) // the original item whose event kept[i] carries
	folded := map[int][]*item{}          // the originals folded into kept[i]
	kept := items[:0:0]
	for _, it := range items {
		if it.rec.Key == "" {
			kept, last = append(kept, it), append(last, it)
			continue
		}
		id := it.identity()
		i, ok := at[id]
		if !ok {
			at[id] = len(kept)
			kept, last = append(kept, it), append(last, it)
			continue
		}
		folded[i] = append(folded[i], last[i])
		last[i] = it
		born := it.rec.Op == cdc.OpDelete && (kept[i].rec.Op == cdc.OpCreate || kept[i].born)
		kept[i] = newItemOf(merge(kept[i].rec, it.rec), it.table)
		kept[i].born = born
	}
	var gone []syncstate.Outcome
	for i := range kept {
		if len(folded[i]) == 0 {
			continue
		}
		reason := "coalesced into " + kept[i].rec.Event.ID()
		for _, it := range folded[i] {
			gone = append(gone, p.outcome(it, syncstate.StatusSkipped, now, 0, reason))
		}
	}
	return kept, gone
}

// merge returns the record that has the effect of writing a, then b.
func merge(a, b Record) Record {
	if !upsert(a.Op) || !upsert(b.Op) {
		return b
	}
	out := b
	if a.Op == cdc.OpCreate || a.Op == cdc.OpRead {
		out.Op = a.Op
	}
	out.Fields = mergeFields(a.Fields, b.Fields)
	return out
}

func upsert(op cdc.Op) bool {
	return op == cdc.OpCreate || op == cdc.OpUpdate || op == cdc.OpRead
}

// mergeFields overlays b on a, nested maps included, without changing
// either.
func mergeFields(a, b map[string]any) map[string]any {
	if a == nil {
		return b
	}
	out := maps.Clone(a)
	for k, v := range b {
		bm, bok := v.(map[string]any)
		am, aok := out[k].(map[string]any)
		if bok && aok {
			out[k] = mergeFields(am, bm)
			continue
		}
		out[k] = v
	}
	return out
}
