package postgres

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/sinks/postgres/applystate"
	"github.com/cdcd-dev/cdcd/syncapi"
)

// applyIn takes the record through the apply steps in order, each of
// which may end its way with a verdict (skipped, held, left to the
// conflict's resolution), and stores what is left of it. It returns the
// newest version of the record that is now applied.
func (w *Writer) applyIn(ctx context.Context, tx pgx.Tx, rec *syncapi.Record, held cdc.Row) (outcome, time.Time, error) {
	c := &change{rec: rec, held: held, object: w.object(rec), id: vendorID(rec.Event)}
	for _, s := range [...]step{w.readLink, w.skipEcho, w.skipKnown, w.skipDecided, w.checkState, w.checkConflict} {
		v, err := s(ctx, tx, c)
		if err != nil {
			return failed, time.Time{}, err
		}
		if v != nil {
			return v.out, v.version, nil
		}
	}
	return w.store(ctx, tx, c)
}

// change is one record on its way through the apply steps, with what
// each step learnt of it.
type change struct {
	rec        *syncapi.Record
	held       cdc.Row // the system's record as refetch read it; nil when not read
	object, id string  // the system's record
	link       *link   // nil when not linked
	match      map[string]any
	stateKey   string
	state      applystate.State
	stamp      applystate.Stamp
	newer      bool           // newer than every change applied to the record
	carried    map[string]any // the fields the change sets, before the conflict step
}

// verdict ends a record's steps before it is stored: what became of it,
// and the version of the record applied already.
type verdict struct {
	out     outcome
	version time.Time
}

// step is one step of applying a record in tx: a verdict ends the
// record's way, nil passes it on. An error is classified already.
type step func(ctx context.Context, tx pgx.Tx, c *change) (*verdict, error)

// readLink locks and reads the link of the system's record, if the change
// names it.
func (w *Writer) readLink(ctx context.Context, tx pgx.Tx, c *change) (*verdict, error) {
	if c.id == "" {
		return nil, nil
	}
	lk, err := w.links.load(ctx, tx, c.object, c.id)
	if err != nil {
		return nil, classify("apply "+w.cfg.Table, err)
	}
	c.link = lk
	return nil, nil
}

// skipEcho skips an echo of cdcd's own write: the system's record as of
// the change is what cdcd knows.
func (w *Writer) skipEcho(ctx context.Context, tx pgx.Tx, c *change) (*verdict, error) {
	layer, err := w.echoLayer(ctx, tx, c.rec, c.link)
	if err != nil {
		return nil, classify("apply "+w.cfg.Table, err)
	}
	if layer == "" {
		return nil, nil
	}
	w.in.Echoes.Add(w.origin, layer)
	if err := w.links.touch(ctx, tx, c.object, c.id, c.link, c.rec.Event.CommitTime); err != nil {
		return nil, classify("apply "+w.cfg.Table, err)
	}
	return &verdict{out: skippedEcho}, nil
}

// skipKnown skips a record read back as of a time the link already knows
// (cdcd's write or a decided conflict was later): it brings nothing new,
// being a hand-over repeated by a retry, or a creation webhook of cdcd's
// own record.
func (w *Writer) skipKnown(_ context.Context, _ pgx.Tx, c *change) (*verdict, error) {
	e, lk := c.rec.Event, c.link
	if lk != nil && e != nil && e.Refetch && !lk.version.IsZero() && !e.CommitTime.After(lk.version) {
		return &verdict{skippedStale, lk.version}, nil
	}
	return nil, nil
}

// skipDecided leaves out of a change the fields that a decided conflict
// of its record took into account: the system's values as of the
// conflict's remote time, which the decision settled (store.ResolveConflict
// moves the link's version to that time). A change no later than that (a
// webhook delivered after the decision) is otherwise compared with the
// base again, which the decision has not moved while its values are on
// their way to the system, and opens a second conflict over what was
// decided, holding the decision back. A change left with none of its
// compared fields is skipped. Only a change no later than the link's
// version costs the look-up.
func (w *Writer) skipDecided(ctx context.Context, tx pgx.Tx, c *change) (*verdict, error) {
	e, lk := c.rec.Event, c.link
	if w.in.Conflicts == nil || lk == nil || e == nil || e.Refetch || c.rec.Op == cdc.OpDelete ||
		e.CommitTime.IsZero() || lk.version.IsZero() {
		return nil, nil
	}
	at := e.CommitTime.Truncate(time.Microsecond) // as timestamptz keeps remote_at
	if at.After(lk.version) {
		return nil, nil
	}
	rows, _ := tx.Query(ctx, `SELECT DISTINCT jsonb_object_keys(remote) FROM cdcd.conflicts
		WHERE system = $1 AND object = $2 AND external_id = $3 AND status = 'resolved' AND remote_at >= $4`,
		w.origin, c.object, c.id, at)
	known, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, classify("apply "+w.cfg.Table, err)
	}
	if len(known) == 0 {
		return nil, nil
	}
	fields := maps.Clone(c.rec.Fields)
	for _, f := range known {
		if col, ok := w.in.Conflicts.Columns[f]; ok {
			delete(fields, col)
		}
	}
	left := false
	for _, col := range w.in.Conflicts.Columns {
		if _, ok := fields[col]; ok {
			left = true
			break
		}
	}
	if !left {
		return &verdict{skippedStale, lk.version}, nil
	}
	c.rec = w.only(c.rec, fields)
	return nil, nil
}

// checkState finds how the record finds its row, locks its state, and
// skips a change older than the one applied last or an update of a
// record deleted within the tombstone TTL. A change older than the record
// but not than some of its columns (a system reporting changed fields one
// by one, in no order) goes on with those columns only.
func (w *Writer) checkState(ctx context.Context, tx pgx.Tx, c *change) (*verdict, error) {
	var err error
	if c.match, c.stateKey, err = w.matchValues(c.rec, c.link); err != nil {
		return nil, cdc.Permanent(err)
	}
	if c.state, err = w.state.Load(ctx, tx, c.stateKey); err != nil {
		return nil, classify("apply "+w.cfg.Table, err)
	}
	return w.stateVerdict(c), nil
}

// stateVerdict is checkState once the record's state is read.
func (w *Writer) stateVerdict(c *change) *verdict {
	st, op := c.state, c.rec.Op
	c.stamp = applystate.StampOf(c.rec.Event)
	c.newer = st.OlderThan(c.stamp)
	switch {
	case st.Tombstoned && op == cdc.OpUpdate,
		st.Tombstoned && op != cdc.OpDelete && (c.stamp.Version.IsZero() || !c.newer):
		return &verdict{skippedTombstoned, st.Version}
	case !c.newer && op == cdc.OpDelete:
		return &verdict{skippedStale, st.Version}
	case !c.newer:
		fresh := st.Fresh(c.rec.Fields, c.stamp)
		if len(fresh) == 0 {
			return &verdict{skippedStale, st.Version}
		}
		c.rec = w.only(c.rec, fresh)
	}
	c.carried = c.rec.Fields
	return nil
}

// checkConflict compares a linked record's change with the local row and
// the link's base (package threeway). A change that joins an open
// conflict is held; one that conflicts, or merges with local changes
// still on their way to the system (their change carries the old values
// of the fields the system just changed), is left to resolveConflicts,
// which applies it without an origin, so the merged record goes to the
// system after them. Otherwise the change goes on with only what changed
// in the system: a field changed locally alone keeps its local value.
func (w *Writer) checkConflict(ctx context.Context, tx pgx.Tx, c *change) (*verdict, error) {
	if c.link == nil || w.in.Conflicts == nil || c.rec.Op == cdc.OpDelete {
		return nil, nil
	}
	t, err := w.compare(ctx, tx, c.rec, c.link, c.match, c.held)
	if err != nil {
		return nil, classify("apply "+w.cfg.Table, err)
	}
	return w.conflictVerdict(c, t), nil
}

// conflictVerdict is checkConflict once the change is compared.
func (w *Writer) conflictVerdict(c *change, t threeWay) *verdict {
	d := t.decision
	switch {
	case t.open:
		return &verdict{out: heldConflict}
	case len(d.Conflicts) > 0, len(d.ToRemote) > 0 && len(d.ToLocal) > 0:
		return &verdict{out: conflicted}
	}
	r := *c.rec
	r.Fields = w.in.Conflicts.LocalChanges(c.rec.Fields, d)
	c.rec = &r
	return nil
}

// store writes the change to its row, links the row to the system's
// record (or drops the link of a record the system deleted), and records
// the record's new state.
func (w *Writer) store(ctx context.Context, tx pgx.Tx, c *change) (outcome, time.Time, error) {
	rec := c.rec
	var (
		localKey string
		err      error
	)
	switch rec.Op {
	case cdc.OpCreate, cdc.OpUpdate, cdc.OpRead:
		localKey, err = w.write(ctx, tx, rec, c.match, c.link != nil)
	case cdc.OpDelete:
		err = w.delete(ctx, tx, c.match)
	default:
		return failed, time.Time{}, cdc.Permanent(fmt.Errorf("apply %s: op %q is not supported", w.cfg.Table, rec.Op))
	}
	if err != nil {
		return failed, time.Time{}, classify(fmt.Sprintf("apply %s to %s", opName(rec.Op), w.cfg.Table), err)
	}
	if err := w.relink(ctx, tx, c, localKey); err != nil {
		return failed, time.Time{}, classify("apply "+w.cfg.Table, err)
	}
	deleted := rec.Op == cdc.OpDelete
	next := c.state.With(c.stamp, c.newer, c.carried, deleted)
	if err := w.state.Save(ctx, tx, c.stateKey, next, deleted); err != nil {
		return failed, time.Time{}, classify("apply "+w.cfg.Table, err)
	}
	return applied, next.Version, nil
}

// relink links the row localKey to the system's record the change names,
// or drops the link when the change is a delete.
func (w *Writer) relink(ctx context.Context, tx pgx.Tx, c *change, localKey string) error {
	switch {
	case c.id == "":
		return nil
	case c.rec.Op == cdc.OpDelete:
		return w.links.drop(ctx, tx, c.object, c.id)
	}
	return w.links.save(ctx, tx, c.object, c.id, localKey, c.link, w.relevant(c.rec.Event), c.rec.Event.CommitTime)
}
