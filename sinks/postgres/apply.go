package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/sinks/postgres/target"
	"github.com/cdcd-dev/cdcd/syncapi"
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
// the server refuses for its own sake (bad data, a constraint), or that
// cannot be read back from the system when its comparison needs that, is
// rolled back to the savepoint and its error reported in its own Result,
// permanent or not, so that the other records of the batch apply and only
// it is retried or dead-lettered. The returned error fails the batch: the
// transaction is lost (the connection failed, ctx ended), or the server's
// trouble (a deadlock, a timeout: see transient) is no fault of the
// record's.
// held is the system's record as refetch read it for the comparison (nil
// when it was not read).
func (w *Writer) apply(ctx context.Context, tx pgx.Tx, rec *syncapi.Record, held cdc.Row) (syncapi.Result, outcome, error) {
	res := syncapi.Result{ExternalID: rec.ExternalID}
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

// only returns rec with only the columns of fields, and its event with
// only the system's fields mapped to them or to no compared column.
func (w *Writer) only(rec *syncapi.Record, fields map[string]any) *syncapi.Record {
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
func (w *Writer) write(ctx context.Context, tx pgx.Tx, rec *syncapi.Record, match map[string]any, linked bool) (string, error) {
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
func (w *Writer) matchValues(rec *syncapi.Record, lk *link) (map[string]any, string, error) {
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
