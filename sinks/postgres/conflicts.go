package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/conflict"
	"github.com/cdcd-dev/cdcd/sinks/postgres/applystate"
	"github.com/cdcd-dev/cdcd/sinks/postgres/threeway"
	"github.com/cdcd-dev/cdcd/syncapi"
)

// Conflicts turns on conflict detection for linked records (see package
// threeway).
type Conflicts = threeway.Config

// threeWay is a linked change compared with the local row and the base.
type threeWay struct {
	open     bool // the record has an open conflict, which the change joined
	in       conflict.Input
	decision conflict.Decision
}

// compare locks the local row, compares it and the change with the
// link's base, and decides the conflicting fields by the policy. A change
// to a record whose conflict is still open joins that conflict: its
// values become the conflict's remote side (those of a change older than
// that side only where it has none) and nothing is applied. held
// is the system's record when refetch read it (nil: it is read here if
// needed).
func (w *Writer) compare(ctx context.Context, tx pgx.Tx, rec *syncapi.Record, lk *link, pk map[string]any, held cdc.Row) (threeWay, error) {
	c := w.in.Conflicts
	object, id := w.object(rec), vendorID(rec.Event)
	remote := c.Remote(w.relevant(rec.Event))
	rb, _ := json.Marshal(remote)
	// A change older than the conflict's remote side adds the fields the
	// side lacks and replaces none: a newer change set them.
	tag, err := tx.Exec(ctx, `UPDATE cdcd.conflicts
		SET remote = CASE WHEN $5 < remote_at THEN $4::jsonb || remote ELSE remote || $4::jsonb END,
			remote_at = GREATEST(remote_at, $5)
		WHERE system = $1 AND object = $2 AND external_id = $3 AND status <> 'resolved'`,
		w.origin, object, id, string(rb), nullTime(rec.Event.CommitTime))
	if err != nil {
		return threeWay{}, fmt.Errorf("join the open conflict: %w", err)
	}
	if tag.RowsAffected() > 0 {
		return threeWay{open: true}, nil
	}
	local, localAt, err := w.localValues(ctx, tx, pk)
	if err != nil {
		return threeWay{}, err
	}
	return w.decide(ctx, rec, lk, local, localAt, held)
}

// decide compares a linked change with the local row's values (local, as
// of localAt) and the link's base, and decides it by the policy.
func (w *Writer) decide(ctx context.Context, rec *syncapi.Record, lk *link, local conflict.Values, localAt time.Time, held cdc.Row) (threeWay, error) {
	c := w.in.Conflicts
	object, id := w.object(rec), vendorID(rec.Event)
	remote := c.Remote(w.relevant(rec.Event))
	var read threeway.Held
	if w.in.Fetcher != nil {
		read = func(ctx context.Context) (cdc.Row, error) {
			if held != nil {
				return held, nil
			}
			got, err := w.in.Fetcher.Fetch(ctx, object, []string{id}, w.in.Fields)
			if err != nil {
				return nil, readError{fmt.Errorf("read %s %s back from %s: %w", object, id, w.origin, err)}
			}
			return got[id], nil // none: gone, so nothing survived
		}
	}
	r := threeway.Record{Remote: remote, RemoteAt: rec.Event.CommitTime, Local: local, LocalAt: localAt, Base: lk.base, Synced: lk.version}
	in, d, err := c.Compare(ctx, w.origin, r, read)
	if err != nil {
		return threeWay{}, err
	}
	return threeWay{in: in, decision: d}, nil
}

// localValues reads the compared columns of the row whose primary key is
// pk, as captured events carry them, and when the row last changed (when
// the server tracks commit timestamps). A row that is gone holds nothing
// changed locally to keep.
func (w *Writer) localValues(ctx context.Context, tx pgx.Tx, pk map[string]any) (conflict.Values, time.Time, error) {
	fields, cols := w.compared()
	values, at, err := w.table.Read(ctx, tx, pk, cols)
	if err != nil {
		return nil, time.Time{}, err
	}
	return localOf(fields, values), at, nil
}

// compared returns the compared fields, sorted, and their columns.
func (w *Writer) compared() (fields, cols []string) {
	fields = slices.Sorted(maps.Keys(w.in.Conflicts.Columns))
	cols = make([]string, len(fields))
	for i, f := range fields {
		cols[i] = w.in.Conflicts.Columns[f]
	}
	return fields, cols
}

// localOf returns the local values of the compared fields, read as
// values (nil when the row is gone).
func localOf(fields []string, values []json.RawMessage) conflict.Values {
	local := conflict.Values{}
	for i, v := range values {
		local[fields[i]] = v
	}
	return local
}

// conflictRow records a conflict and its decision in cdcd.conflicts.
func (w *Writer) conflictRow(ctx context.Context, tx pgx.Tx, rec *syncapi.Record, lk *link, t threeWay) error {
	c, d := w.in.Conflicts, t.decision
	status, by, rule := "resolved", "policy", d.Rule()
	var result any
	if d.Resolved() {
		rb, _ := json.Marshal(d.Result)
		result = string(rb)
	} else {
		status = "pending"
		if slices.ContainsFunc(d.Pending, func(f string) bool { return d.Fields[f].Rule == conflict.KindManual || d.Fields[f].Rule == "" }) {
			status = "escalated"
		}
		by = ""
	}
	var proposal any
	if len(d.Proposal) > 0 {
		pb, _ := json.Marshal(d.Proposal)
		proposal = string(pb)
	}
	// Every compared field's column: the system's changes of other fields
	// that join the conflict while it holds the record are applied with
	// its resolution.
	columns := c.Columns
	enc := func(v any) string { b, _ := json.Marshal(v); return string(b) }
	_, err := tx.Exec(ctx, `INSERT INTO cdcd.conflicts (pipeline, system, object, external_id, local_table, local_key,
		fields, columns, base, local, remote, local_at, remote_at, result, proposal, rule, status, resolved_by, resolved_at, notified_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9::jsonb, $10::jsonb, $11::jsonb, $12, $13, $14::jsonb, $15::jsonb, $16, $17,
			NULLIF($18, ''), CASE WHEN $17 = 'resolved' THEN now() END, CASE WHEN $17 = 'escalated' THEN now() END)`,
		c.Pipeline, w.origin, w.object(rec), vendorID(rec.Event), w.cfg.Table, lk.localKey,
		d.Conflicts, enc(columns), enc(t.in.Base), enc(t.in.Local.Values), enc(t.in.Remote.Values),
		nullTime(t.in.Local.Time), nullTime(t.in.Remote.Time), result, proposal, rule, status, by)
	if err != nil {
		return fmt.Errorf("record the conflict: %w", err)
	}
	if c.Detected != nil {
		c.Detected.WithLabelValues(c.Pipeline, rule).Inc()
	}
	return nil
}

// resolveConflicts applies the changes that conflicted, in a transaction
// without an origin: what the policy decided is written to the local row
// and, captured as a local change, goes to every system, the one in
// conflict included. A change older in flight to that system is then
// overwritten by the decision, so both sides converge. Undecided
// conflicts are recorded and hold their record. A change the table or the
// server refuses is rolled back on its own and reported in its Result.
func (w *Writer) resolveConflicts(ctx context.Context, records []*syncapi.Record, results []*syncapi.Result, held []cdc.Row) error {
	conn, err := w.pool.Acquire(ctx)
	if err != nil {
		return classify("connect to the local database", err)
	}
	defer conn.Release()
	tx, err := conn.Begin(ctx)
	if err != nil {
		return classify("begin", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	for i, rec := range records {
		sp, err := tx.Begin(ctx)
		if err != nil {
			return classify("savepoint", err)
		}
		err = w.resolveOne(ctx, sp, rec, results[i], held[i])
		switch {
		case err == nil:
			err = sp.Commit(ctx)
		case cdc.IsPermanent(err) || failsAlone(err):
			// Refused for this change alone: the others still apply.
			results[i].Err = err
			err = sp.Rollback(ctx)
		default:
			return err
		}
		if err != nil {
			return classify("end savepoint", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return classify("commit", err)
	}
	return nil
}

// resolveOne records and applies one conflicted change in tx.
func (w *Writer) resolveOne(ctx context.Context, tx pgx.Tx, rec *syncapi.Record, res *syncapi.Result, held cdc.Row) error {
	c := &change{rec: rec, held: held, object: w.object(rec), id: vendorID(rec.Event)}
	t, ok, err := w.compareAgain(ctx, tx, c, res)
	if err != nil || !ok {
		return err
	}
	d := t.decision
	if len(d.Conflicts) > 0 {
		if err := w.conflictRow(ctx, tx, c.rec, c.link, t); err != nil {
			return classify("resolve a conflict in "+w.cfg.Table, err)
		}
		if !d.Resolved() {
			return nil
		}
	}
	return w.applyResolution(ctx, tx, c, d)
}

// compareAgain compares a conflicted change once more, in the
// transaction that applies the decision: its link, the state of its
// record and the local row may have moved since it was first compared.
// It reports false when there is nothing to decide: the record is
// unlinked meanwhile (the next delivery applies the change), a later
// change of the same fields came first, the record's conflict is open,
// or the change cannot find its row (res.Err says why).
func (w *Writer) compareAgain(ctx context.Context, tx pgx.Tx, c *change, res *syncapi.Result) (threeWay, bool, error) {
	lk, err := w.links.load(ctx, tx, c.object, c.id)
	if err != nil || lk == nil {
		return threeWay{}, false, classifyResolve(w.cfg.Table, err)
	}
	c.link = lk
	if c.match, c.stateKey, err = w.matchValues(c.rec, lk); err != nil {
		res.Err = err
		return threeWay{}, false, nil
	}
	if c.state, err = w.state.Load(ctx, tx, c.stateKey); err != nil {
		return threeWay{}, false, classifyResolve(w.cfg.Table, err)
	}
	c.stamp = applystate.StampOf(c.rec.Event)
	c.newer = c.state.OlderThan(c.stamp)
	if !c.newer {
		fresh := c.state.Fresh(c.rec.Fields, c.stamp)
		if len(fresh) == 0 {
			return threeWay{}, false, nil
		}
		c.rec = w.only(c.rec, fresh)
	}
	t, err := w.compare(ctx, tx, c.rec, lk, c.match, c.held)
	if err != nil {
		return threeWay{}, false, classifyResolve(w.cfg.Table, err)
	}
	return t, !t.open, nil
}

// applyResolution writes what the decision gives the local row, and
// records what both sides now hold: the link's base and version, and the
// record's state.
func (w *Writer) applyResolution(ctx context.Context, tx pgx.Tx, c *change, d conflict.Decision) error {
	fields := w.in.Conflicts.Resolution(c.rec.Fields, d)
	if _, _, err := w.table.Update(ctx, tx, fields, c.match); err != nil {
		return classify("apply a resolved conflict to "+w.cfg.Table, err)
	}
	// The base is what both sides hold: the system does not hold the
	// values still to be sent to it (ToRemote) until they are.
	agreed := maps.Clone(d.Result)
	for f := range d.ToRemote {
		delete(agreed, f)
	}
	if err := w.links.mergeBase(ctx, tx, c.object, c.id, c.link, agreed); err != nil {
		return classifyResolve(w.cfg.Table, err)
	}
	if err := w.links.touch(ctx, tx, c.object, c.id, c.link, c.rec.Event.CommitTime); err != nil {
		return classifyResolve(w.cfg.Table, err)
	}
	next := c.state.With(c.stamp, c.newer, c.rec.Fields, false)
	if err := w.state.Save(ctx, tx, c.stateKey, next, false); err != nil {
		return classifyResolve(w.cfg.Table, err)
	}
	return nil
}

// classifyResolve classifies an error of resolving a conflict in table;
// nil stays nil.
func classifyResolve(table string, err error) error {
	if err == nil {
		return nil
	}
	return classify("resolve a conflict in "+table, err)
}

func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}
