package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/delivery"
	"github.com/cdcd-dev/cdcd/sinks/postgres/applystate"
	"github.com/cdcd-dev/cdcd/sinks/postgres/target"
)

// outcome is what became of one record.
type outcome int

const (
	applied outcome = iota
	skippedStale
	skippedTombstoned
	skippedEcho
	skippedGone
	heldConflict // joined an open conflict
	conflicted   // left to resolveConflicts
	failed
	outcomes
)

// apply applies one record in a savepoint of tx. A record the table or
// the server refuses (bad data, a constraint, but also a deadlock or a
// timeout of its statement), or that cannot be read back from the system
// when its comparison needs that, is rolled back to the savepoint and its
// error reported in its own Result, permanent or not, so that the other
// records of the batch apply and only it is retried or dead-lettered. The
// returned error means the transaction is lost (the connection failed, ctx
// ended) and fails the batch.
// held is the system's record as refetch read it for the comparison (nil
// when it was not read).
func (w *Writer) apply(ctx context.Context, tx pgx.Tx, rec *delivery.Record, held cdc.Row) (delivery.Result, outcome, error) {
	res := delivery.Result{ExternalID: rec.ExternalID}
	sp, err := tx.Begin(ctx)
	if err != nil {
		return res, failed, classify("savepoint", err)
	}
	out, version, err := w.applyIn(ctx, sp, rec, held)
	if err != nil {
		if !cdc.IsPermanent(err) && !failsAlone(err) {
			return res, failed, err
		}
		if rbErr := sp.Rollback(ctx); rbErr != nil {
			return res, failed, classify("roll back to savepoint", rbErr)
		}
		res.Err = err
		return res, failed, nil
	}
	if err := sp.Commit(ctx); err != nil {
		return res, failed, classify("release savepoint", err)
	}
	if !version.IsZero() {
		res.Version = version.UTC().Format(time.RFC3339Nano)
	}
	return res, out, nil
}

// applyIn checks the record against its link and the state of its key,
// and applies it. It returns the newest version of the record that is now
// applied.
func (w *Writer) applyIn(ctx context.Context, tx pgx.Tx, rec *delivery.Record, held cdc.Row) (outcome, time.Time, error) {
	object, id := w.object(rec), vendorID(rec.Event)
	var lk *link
	if id != "" {
		var err error
		if lk, err = w.loadLink(ctx, tx, object, id); err != nil {
			return failed, time.Time{}, classify("apply "+w.cfg.Table, err)
		}
	}
	layer, err := w.echoLayer(ctx, tx, rec, lk)
	if err != nil {
		return failed, time.Time{}, classify("apply "+w.cfg.Table, err)
	}
	if layer != "" {
		w.in.Echoes.Add(w.origin, layer)
		// The system's record as of this change is what cdcd knows.
		if err := w.touchVersion(ctx, tx, object, id, lk, rec.Event.CommitTime); err != nil {
			return failed, time.Time{}, classify("apply "+w.cfg.Table, err)
		}
		return skippedEcho, time.Time{}, nil
	}
	// A record read back as of a time the link already knows (cdcd's write
	// or a decided conflict was later) brings nothing new: a hand-over
	// repeated by a retry, or a creation webhook of cdcd's own record.
	if e := rec.Event; lk != nil && e != nil && e.Refetch && !lk.version.IsZero() && !e.CommitTime.After(lk.version) {
		return skippedStale, lk.version, nil
	}
	match, stateKey, err := w.matchValues(rec, lk)
	if err != nil {
		return failed, time.Time{}, cdc.Permanent(err)
	}
	st, err := w.state.Load(ctx, tx, stateKey)
	if err != nil {
		return failed, time.Time{}, classify("apply "+w.cfg.Table, err)
	}
	s := applystate.StampOf(rec.Event)
	newer := st.OlderThan(s)
	switch {
	case st.Tombstoned && rec.Op == cdc.OpUpdate,
		st.Tombstoned && rec.Op != cdc.OpDelete && (s.Version.IsZero() || !newer):
		return skippedTombstoned, st.Version, nil
	case !newer && rec.Op == cdc.OpDelete:
		return skippedStale, st.Version, nil
	case !newer:
		// Older than the record, but maybe not than each field: a system
		// reporting changed fields one by one, in no order.
		fresh := st.Fresh(rec.Fields, s)
		if len(fresh) == 0 {
			return skippedStale, st.Version, nil
		}
		rec = w.only(rec, fresh)
	}
	carried := rec.Fields
	if lk != nil && w.in.Conflicts != nil && rec.Op != cdc.OpDelete {
		t, err := w.compare(ctx, tx, rec, lk, match, held)
		if err != nil {
			return failed, time.Time{}, classify("apply "+w.cfg.Table, err)
		}
		switch {
		case t.open:
			return heldConflict, time.Time{}, nil
		case len(t.decision.Conflicts) > 0, len(t.decision.ToRemote) > 0 && len(t.decision.ToLocal) > 0:
			// Decided, or merged with local changes still on their way to
			// the system (their change carries the old values of the
			// fields the system just changed): applied without an origin,
			// so the merged record goes to the system after them.
			return conflicted, time.Time{}, nil
		}
		// Only what changed in the system: a field changed locally alone
		// keeps its local value.
		r := *rec
		r.Fields = w.in.Conflicts.LocalChanges(rec.Fields, t.decision)
		rec = &r
	}
	var localKey string
	switch rec.Op {
	case cdc.OpCreate, cdc.OpUpdate, cdc.OpRead:
		localKey, err = w.write(ctx, tx, rec, match, lk != nil)
	case cdc.OpDelete:
		err = w.delete(ctx, tx, match)
	default:
		return failed, time.Time{}, cdc.Permanent(fmt.Errorf("apply %s: op %q is not supported", w.cfg.Table, rec.Op))
	}
	if err != nil {
		return failed, time.Time{}, classify(fmt.Sprintf("apply %s to %s", opName(rec.Op), w.cfg.Table), err)
	}
	if id != "" {
		if rec.Op == cdc.OpDelete {
			err = w.dropLink(ctx, tx, object, id)
		} else {
			err = w.saveLink(ctx, tx, object, id, localKey, lk, rec.Event)
		}
		if err != nil {
			return failed, time.Time{}, classify("apply "+w.cfg.Table, err)
		}
	}
	next := st.With(s, newer, carried, rec.Op == cdc.OpDelete)
	if err := w.state.Save(ctx, tx, stateKey, next, rec.Op == cdc.OpDelete); err != nil {
		return failed, time.Time{}, classify("apply "+w.cfg.Table, err)
	}
	return applied, next.Version, nil
}

// only returns rec with only the columns of fields, and its event with
// only the system's fields mapped to them or to no compared column.
func (w *Writer) only(rec *delivery.Record, fields map[string]any) *delivery.Record {
	r := *rec
	r.Fields = fields
	if rec.Event == nil || w.in.Conflicts == nil {
		return &r
	}
	e := *rec.Event
	e.After = nil
	for _, f := range rec.Event.After {
		if col, ok := w.in.Conflicts.Columns[f.Name]; ok {
			if _, keep := fields[col]; !keep {
				continue
			}
		}
		e.After = append(e.After, f)
	}
	r.Event = &e
	return &r
}

func opName(op cdc.Op) string {
	if op == cdc.OpDelete {
		return "a delete"
	}
	return "an upsert"
}

// write updates the linked row, or upserts the record by its match
// columns when it is not linked or its linked row is gone; it returns the
// row's local key.
func (w *Writer) write(ctx context.Context, tx pgx.Tx, rec *delivery.Record, match map[string]any, linked bool) (string, error) {
	if !linked {
		return w.table.Upsert(ctx, tx, rec.Fields, match)
	}
	localKey, found, err := w.table.Update(ctx, tx, rec.Fields, match)
	if err != nil || found {
		return localKey, err
	}
	byMatch, _, err := w.matchValues(rec, nil)
	if err != nil {
		return "", cdc.Permanent(fmt.Errorf("the linked row of %s is gone and the change cannot recreate it: %w", w.cfg.Table, err))
	}
	return w.table.Upsert(ctx, tx, rec.Fields, byMatch)
}

// delete applies the delete policy to the matched row.
func (w *Writer) delete(ctx context.Context, tx pgx.Tx, match map[string]any) error {
	switch w.cfg.OnDelete {
	case DeleteIgnore:
		return nil
	case DeleteSoft:
		return w.table.Delete(ctx, tx, match, w.cfg.SoftDeleteColumn)
	}
	return w.table.Delete(ctx, tx, match, "")
}

// matchValues returns how the record finds its row: the primary key's
// values when it is linked, else the match columns' values from its
// Fields. It also returns the key of its apply state: the record's Key
// (the system's id), else the canonical JSON of the match values.
func (w *Writer) matchValues(rec *delivery.Record, lk *link) (map[string]any, string, error) {
	var match map[string]any
	if lk != nil {
		kv, err := target.KeyValues(lk.localKey)
		if err != nil {
			return nil, "", err
		}
		match = kv
	} else {
		match = make(map[string]any, len(w.cfg.Match))
		for _, c := range w.cfg.Match {
			v, ok := rec.Fields[c]
			if _, err := target.Literal(v); !ok || v == nil || err != nil {
				return nil, "", fmt.Errorf("apply to %s: the record is not linked yet and has no usable value for match column %q", w.cfg.Table, c)
			}
			match[c] = v
		}
	}
	if rec.Key != "" {
		return match, rec.Key, nil
	}
	canon := make(map[string]string, len(match))
	for c, v := range match {
		lit, _ := target.Literal(v)
		s, _ := lit.(string)
		canon[c] = s
	}
	b, err := json.Marshal(canon)
	if err != nil {
		return nil, "", err
	}
	return match, string(b), nil
}
