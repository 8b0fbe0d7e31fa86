package postgres

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/sinks/postgres/applystate"
	"github.com/cdcd-dev/cdcd/sinks/postgres/target"
	"github.com/cdcd-dev/cdcd/store"
	"github.com/cdcd-dev/cdcd/syncapi"
)

// A Write's records are applied in runs: a run is a stretch of upserts
// of distinct records (no two share the system's record, the apply
// state's key, the match values or the linked row), which depend on
// nothing of each other and are taken through the apply steps together,
// each step's reads and writes one statement for the whole run. A record
// that is not an upsert (a delete) ends the run before it and is applied
// on its own, and so is a record of the run whose conflict is open.
// When a run's statement is refused (one record's data, or two records
// that turn out to reach the same row), the run is rolled back to its
// savepoint and its records applied one by one, so only the record at
// fault fails. The server's trouble (a deadlock, a timeout: see
// transient) fails the whole Write instead.
//
// A conflict is resolved after its transaction commits, without the
// origin (resolveConflicts). The records after a conflicting one are
// applied in a transaction after that resolution, as they would be in
// Writes after its own: applied before it, a record could take its row
// and link over (a second system record matched to the row), or hold a
// value its decision writes (a unique email), and the conflict would
// end otherwise. A record of its run before it that reaches its row
// sends the run one by one.

// errOneByOne means a run cannot be applied as one: its records are
// applied one by one.
var errOneByOne = errors.New("the run's records are applied one by one")

// applyAll applies the records not done, in order, in tx, filling in
// results and counts and marking them done, until a record conflicts: it
// returns the records left to resolveConflicts, and more when records
// after them are left to apply. The returned error means the transaction
// is lost.
func (w *Writer) applyAll(ctx context.Context, tx pgx.Tx, records []syncapi.Record, done []bool, held []cdc.Row, results []syncapi.Result, counts *[outcomes]int) ([]int, bool, error) {
	var conflicting []int
	note := func(i int, res syncapi.Result, out outcome) {
		results[i] = res
		counts[out]++
		done[i] = true
		if out == conflicted {
			conflicting = append(conflicting, i)
		}
	}
	one := func(i int) error {
		res, out, err := w.apply(ctx, tx, &records[i], held[i])
		if err == nil {
			note(i, res, out)
		}
		return err
	}
	saved := false // the last run's savepoint is still set
	for i := 0; i < len(records) && len(conflicting) == 0; {
		if done[i] {
			i++
			continue
		}
		run := w.run(records, done, i)
		if len(run) < 2 {
			if err := one(i); err != nil {
				return nil, false, err
			}
			i++
			continue
		}
		got, alone, err := w.applyRun(ctx, tx, records, held, run, saved)
		saved = err == nil
		switch {
		case errors.Is(err, errOneByOne):
			w.log.Debug().Int("records", len(run)).Str("cause", cause(err)).Msg("run applied one by one")
			alone = run
		case err != nil:
			return nil, false, err
		}
		for k, i := range run {
			if got != nil && got[k].out != outcomes && !got[k].later {
				note(i, got[k].res, got[k].out)
			}
		}
		for _, i := range alone {
			if len(conflicting) > 0 {
				break
			}
			if err := one(i); err != nil {
				return nil, false, err
			}
		}
		i = run[len(run)-1] + 1
	}
	slices.Sort(conflicting)
	return conflicting, slices.Contains(done, false), nil
}

// cause names why a run was applied one by one, without values.
func cause(err error) string {
	var pgErr interface{ SQLState() string }
	if errors.As(err, &pgErr) {
		return pgErr.SQLState()
	}
	if errors.Is(err, target.ErrNotBatchable) {
		return "unknown column"
	}
	return "records share a row"
}

// inRun reports whether rec may join a run: an upsert.
func inRun(rec *syncapi.Record) bool {
	switch rec.Op {
	case cdc.OpCreate, cdc.OpUpdate, cdc.OpRead:
		return true
	}
	return false
}

// run returns the records of the run that starts at start: upserts of
// distinct records, skipping those done.
func (w *Writer) run(records []syncapi.Record, done []bool, start int) []int {
	var run []int
	seen := map[string]bool{}
	for i := start; i < len(records); i++ {
		if done[i] {
			continue
		}
		rec := &records[i]
		if !inRun(rec) {
			break
		}
		keys := w.runKeys(rec)
		if slices.ContainsFunc(keys, func(k string) bool { return seen[k] }) {
			break
		}
		for _, k := range keys {
			seen[k] = true
		}
		run = append(run, i)
	}
	return run
}

// runKeys are what names a record before anything is read: the system's
// record, the record's Key and its match values.
func (w *Writer) runKeys(rec *syncapi.Record) []string {
	var keys []string
	if id := vendorID(rec.Event); id != "" {
		keys = append(keys, "id\x00"+w.object(rec)+"\x00"+id)
	}
	if rec.Key != "" {
		keys = append(keys, "key\x00"+rec.Key)
	}
	var b strings.Builder
	b.WriteString("match")
	for _, c := range w.cfg.Match {
		lit, err := target.Literal(rec.Fields[c])
		s, _ := lit.(string)
		if err != nil || lit == nil {
			return keys
		}
		b.WriteString("\x00" + s)
	}
	return append(keys, b.String())
}

// ran is what became of one record of a run; out is outcomes when the
// record is applied on its own, later when it is left to a transaction
// after the run's conflict is resolved.
type ran struct {
	res   syncapi.Result
	out   outcome
	later bool
}

// runSavepoint is the savepoint a run is applied in. It is set in the
// round trip of the run's reads and stays set after the run's writes
// (their results are checked after the round trip that sends them): the
// next run's reads release it, or the commit does.
const runSavepoint = "cdcd_run"

// applyRun takes the run's records through the apply steps together, in
// a savepoint of tx. It returns what became of each, and the records to
// apply on their own (their conflict is open). errOneByOne means the run
// was rolled back and its records are to be applied one by one; another
// error that the transaction is lost. release says the savepoint of the
// run before is still set; after a nil error this run's is.
func (w *Writer) applyRun(ctx context.Context, tx pgx.Tx, records []syncapi.Record, held []cdc.Row, run []int, release bool) ([]ran, []int, error) {
	r := &runState{w: w, tx: tx, got: make([]ran, len(run)), release: release, conflictRows: map[string]bool{}}
	var err error
	for _, i := range run {
		r.changes = append(r.changes, &change{rec: &records[i], held: held[i], object: w.object(&records[i]), id: vendorID(records[i].Event)})
	}
	err = r.apply(ctx)
	if err != nil {
		if !r.saved {
			return nil, nil, classify("apply "+w.cfg.Table, err)
		}
		if transient(err) || !errors.Is(err, errOneByOne) && !refused(err) && !cdc.IsPermanent(err) && !errors.Is(err, target.ErrNotBatchable) {
			return nil, nil, classify("apply "+w.cfg.Table, err)
		}
		if _, rbErr := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT "+runSavepoint); rbErr != nil {
			return nil, nil, classify("roll back to savepoint", rbErr)
		}
		if _, rbErr := tx.Exec(ctx, "RELEASE SAVEPOINT "+runSavepoint); rbErr != nil {
			return nil, nil, classify("release savepoint", rbErr)
		}
		return nil, nil, errors.Join(errOneByOne, err)
	}
	var alone []int
	for k, g := range r.got {
		if g.out == outcomes && !g.later {
			alone = append(alone, run[k])
		}
	}
	return r.got, alone, nil
}

// runState is a run on its way through the apply steps.
type runState struct {
	w       *Writer
	tx      pgx.Tx
	changes []*change
	got     []ran
	decided []bool // the record's way ended: got holds what became of it
	saved   bool   // the run's savepoint is set
	release bool   // the savepoint of the run before is still set

	conflictRows map[string]bool // the rows of the run's conflicts

	// What read found, at each change's place.
	writes    [][]map[string]any // the recent writes to the system's record
	states    []applystate.State // the state of the change's Key
	stateRead []bool             // states holds the state of the change's Key
	open      []bool             // the system's record has an open conflict
	pin       *target.Pin        // the read settings, pinned for the local rows' read; nil when not
}

// end ends record k's way with a verdict, a failure of its own, or
// nothing (applied on its own).
func (r *runState) end(k int, v *verdict, err error) {
	r.decided[k] = true
	g := &r.got[k]
	g.res.ExternalID = r.changes[k].rec.ExternalID
	switch {
	case err != nil:
		g.res.Err, g.out = err, failed
	case v == nil:
		g.out = outcomes
	default:
		g.out = v.out
		if !v.version.IsZero() {
			g.res.Version = v.version.UTC().Format(time.RFC3339Nano)
		}
	}
}

// each calls fn with every record whose way goes on.
func (r *runState) each(fn func(k int, c *change) error) error {
	for k, c := range r.changes {
		if !r.decided[k] {
			if err := fn(k, c); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *runState) apply(ctx context.Context) error {
	r.decided = make([]bool, len(r.changes))
	for _, step := range [...]func(context.Context) error{r.read, r.skipEchoes, r.skipKnown, r.checkStates, r.checkConflicts, r.store} {
		if err := step(ctx); err != nil {
			return err
		}
	}
	return nil
}

// read sets the run's savepoint and reads what the steps after it need,
// in one round trip: it locks and reads the links of the run's records,
// reads their recent writes (the echo check), locks and reads the states
// of the records' Keys (the state of a record without a Key is read once
// its link is known), finds the records with an open conflict and pins
// the read settings for the local rows' read. Locks are taken in the
// order the steps took them one by one: links, then states. Two records
// linked to one row are not independent.
func (r *runState) read(ctx context.Context) error {
	w, n := r.w, len(r.changes)
	var (
		keys       []linkKey
		at, states []int
		stateKeys  []string
	)
	for k, c := range r.changes {
		if c.id != "" {
			keys, at = append(keys, linkKey{c.object, c.id}), append(at, k)
		}
		if c.rec.Key != "" {
			stateKeys, states = append(stateKeys, c.rec.Key), append(states, k)
		}
	}
	b := &pgx.Batch{}
	if r.release {
		b.Queue("RELEASE SAVEPOINT " + runSavepoint)
	}
	b.Queue("SAVEPOINT " + runSavepoint).Exec(func(pgconn.CommandTag) error {
		r.saved = true
		return nil
	})
	links := make([]*link, len(keys))
	w.links.queueLoadMany(b, keys, links)
	objects, ids := make([]string, len(keys)), make([]string, len(keys))
	for i, key := range keys {
		objects[i], ids[i] = key.object, key.id
	}
	writes := make([][]map[string]any, len(keys))
	store.QueueReadRecentWritesOf(b, w.origin, objects, ids, writes)
	loaded := make([]applystate.State, len(stateKeys))
	w.state.QueueLoadMany(b, stateKeys, loaded)
	var open []int64
	if w.in.Conflicts != nil && len(keys) > 0 {
		b.Queue(`SELECT DISTINCT r.ord FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS r(object, external_id, ord)
			JOIN cdcd.conflicts c ON c.system = $1 AND c.object = r.object AND c.external_id = r.external_id AND c.status <> 'resolved'`,
			w.origin, objects, ids).Query(func(rows pgx.Rows) error {
			var err error
			open, err = pgx.CollectRows(rows, pgx.RowTo[int64])
			return err
		})
		r.pin = target.QueuePinReadSettings(b)
	}
	if err := r.tx.SendBatch(ctx, b).Close(); err != nil {
		return err
	}
	r.writes, r.open = make([][]map[string]any, n), make([]bool, n)
	r.states, r.stateRead = make([]applystate.State, n), make([]bool, n)
	for i, k := range at {
		r.writes[k] = writes[i]
	}
	for _, o := range open {
		if o < 1 || o > int64(len(at)) {
			return fmt.Errorf("open conflict %d reported of %d", o, len(at))
		}
		r.open[at[o-1]] = true
	}
	for i, k := range states {
		r.states[k], r.stateRead[k] = loaded[i], true
	}
	rows := map[string]bool{}
	for i, k := range at {
		lk := links[i]
		r.changes[k].link = lk
		if lk == nil {
			continue
		}
		if rows[lk.localKey] {
			return errOneByOne
		}
		rows[lk.localKey] = true
	}
	return nil
}

// skipEchoes skips the echoes of cdcd's own writes (see skipEcho),
// reading the recent writes of the records whose link's base does not
// know the change in one query, and moving the echoes' links' versions
// in one statement.
func (r *runState) skipEchoes(ctx context.Context) error {
	w := r.w
	layers := make([]string, len(r.changes))
	err := r.each(func(k int, c *change) error {
		var err error
		layers[k], err = w.echoWith(c.rec, c.link, func(string, string) ([]map[string]any, error) { return r.writes[k], nil })
		return err
	})
	if err != nil {
		return err
	}
	var (
		objects, ids []string
		ats          []time.Time
	)
	for k, layer := range layers {
		if layer == "" {
			continue
		}
		c := r.changes[k]
		w.in.Echoes.Add(w.origin, layer)
		if at := c.rec.Event.CommitTime; c.link != nil && !at.IsZero() && at.After(c.link.version) {
			objects, ids, ats = append(objects, c.object), append(ids, c.id), append(ats, at)
		}
		r.end(k, &verdict{out: skippedEcho}, nil)
	}
	return store.SetLinkVersions(ctx, r.tx, w.origin, objects, ids, ats)
}

func (r *runState) skipKnown(ctx context.Context) error {
	return r.each(func(k int, c *change) error {
		if v, _ := r.w.skipKnown(ctx, nil, c); v != nil {
			r.end(k, v, nil)
			return nil
		}
		v, err := r.w.skipDecided(ctx, r.tx, c)
		if v != nil {
			r.end(k, v, nil)
		}
		return err
	})
}

// checkStates is checkState for the run, its states read in one query.
func (r *runState) checkStates(ctx context.Context) error {
	var keys []string
	var at []int
	seen := map[string]bool{}
	err := r.each(func(k int, c *change) error {
		var err error
		if c.match, c.stateKey, err = r.w.matchValues(c.rec, c.link); err != nil {
			r.end(k, nil, cdc.Permanent(err))
			return nil
		}
		if seen[c.stateKey] {
			return errOneByOne
		}
		seen[c.stateKey] = true
		keys, at = append(keys, c.stateKey), append(at, k)
		return nil
	})
	if err != nil {
		return err
	}
	var unread []string
	var unreadAt []int
	for _, k := range at {
		if c := r.changes[k]; !r.stateRead[k] || c.stateKey != c.rec.Key {
			unread, unreadAt = append(unread, c.stateKey), append(unreadAt, k)
		}
	}
	states, err := r.w.state.LoadMany(ctx, r.tx, unread)
	if err != nil {
		return err
	}
	for i, k := range unreadAt {
		r.states[k] = states[i]
	}
	for _, k := range at {
		c := r.changes[k]
		c.state = r.states[k]
		if v := r.w.stateVerdict(c); v != nil {
			r.end(k, v, nil)
		}
	}
	return nil
}

// checkConflicts is checkConflict for the run: the records with an open
// conflict are found in one query and applied on their own (they join
// it), the local rows of the others read in one query.
func (r *runState) checkConflicts(ctx context.Context) error {
	w := r.w
	if w.in.Conflicts == nil {
		return nil
	}
	if r.pin != nil {
		defer r.pin.Restore(ctx, r.tx)
	}
	_ = r.each(func(k int, c *change) error {
		if c.link != nil && r.open[k] {
			r.end(k, nil, nil)
		}
		return nil
	})
	var pks []map[string]any
	var at []int
	_ = r.each(func(k int, c *change) error {
		if c.link != nil {
			pks, at = append(pks, c.match), append(at, k)
		}
		return nil
	})
	if len(pks) == 0 {
		return nil
	}
	fields, cols := w.compared()
	read := w.table.ReadMany
	if r.pin != nil {
		read = w.table.ReadManyPinned
	}
	values, times, err := read(ctx, r.tx, pks, cols)
	if err != nil {
		return err
	}
	for n, k := range at {
		c := r.changes[k]
		t, err := w.decide(ctx, c.rec, c.link, localOf(fields, values[n]), times[n], c.held)
		switch {
		case err != nil && failsAlone(err):
			r.end(k, nil, err)
			continue
		case err != nil:
			return err
		}
		if v := w.conflictVerdict(c, t); v != nil {
			r.end(k, v, nil)
			if v.out == conflicted {
				r.conflictRows[c.link.localKey] = true
			}
		}
	}
	// The records after the first that conflicts wait for its resolution,
	// the ones to apply on their own with the others.
	first := slices.IndexFunc(r.got, func(g ran) bool { return g.out == conflicted })
	for k := first + 1; first >= 0 && k < len(r.changes); k++ {
		if !r.decided[k] || r.got[k].out == outcomes {
			r.decided[k], r.got[k].later = true, true
		}
	}
	return nil
}

// store writes the changes left to their rows (linked ones by their
// primary key, the others by their match values), per set of columns
// in one statement, then links the rows and records the states. The
// upserts of rows not linked go first, one round trip each, since
// their links need the keys they report; the linked rows' updates, the
// links and the states then go in one round trip.
func (r *runState) store(ctx context.Context) error {
	w := r.w
	type group struct {
		cols []string
		at   []int
	}
	updates, upserts := map[string]*group{}, map[string]*group{}
	_ = r.each(func(k int, c *change) error {
		values, into := c.rec.Fields, updates
		if c.link == nil {
			values, into = maps.Clone(c.rec.Fields), upserts
			maps.Copy(values, c.match)
		}
		cols := slices.Sorted(maps.Keys(values))
		name := strings.Join(cols, "\x00")
		g := into[name]
		if g == nil {
			g = &group{cols: cols}
			into[name] = g
		}
		g.at = append(g.at, k)
		return nil
	})
	// The linked rows are updated in the round trip that writes the
	// links and states, which name each row by its link's key; the keys
	// the updates report are checked against them after it.
	b := &pgx.Batch{}
	localKeys := make([]string, len(r.changes))
	type queued struct {
		at  []int
		got []string // the local key each update reported
	}
	var checks []queued
	for _, name := range slices.Sorted(maps.Keys(updates)) {
		g := updates[name]
		rows, pks := make([]map[string]any, len(g.at)), make([]map[string]any, len(g.at))
		for n, k := range g.at {
			rows[n], pks[n] = r.changes[k].rec.Fields, r.changes[k].match
			localKeys[k] = r.changes[k].link.localKey
		}
		got := make([]string, len(g.at))
		if err := w.table.QueueUpdateMany(b, g.cols, rows, pks, got); err != nil {
			return err
		}
		checks = append(checks, queued{g.at, got})
	}
	match := slices.Sorted(slices.Values(w.cfg.Match))
	for _, name := range slices.Sorted(maps.Keys(upserts)) {
		g := upserts[name]
		rows := make([]map[string]any, len(g.at))
		for n, k := range g.at {
			rows[n] = maps.Clone(r.changes[k].rec.Fields)
			maps.Copy(rows[n], r.changes[k].match)
		}
		got, err := w.table.UpsertMany(ctx, r.tx, g.cols, match, rows)
		if err != nil {
			return err
		}
		for n, k := range g.at {
			if got[n] == "" {
				return errOneByOne
			}
			localKeys[k] = got[n]
		}
	}
	var (
		links  []store.LinkedRecord
		keys   []string
		states []applystate.State
		rows   = map[string]bool{}
	)
	err := r.each(func(k int, c *change) error {
		if rows[localKeys[k]] || r.conflictRows[localKeys[k]] {
			return errOneByOne // two records reached one row, or a record a conflict's
		}
		rows[localKeys[k]] = true
		if c.id != "" {
			lr, err := w.links.linked(c.object, c.id, localKeys[k], c.link, w.relevant(c.rec.Event), c.rec.Event.CommitTime)
			if err != nil {
				return err
			}
			links = append(links, lr)
		}
		next := c.state.With(c.stamp, c.newer, c.carried, false)
		keys, states = append(keys, c.stateKey), append(states, next)
		r.end(k, &verdict{out: applied, version: next.Version}, nil)
		return nil
	})
	if err != nil {
		return err
	}
	store.QueueLinkRecords(b, links)
	if err := w.state.QueueSaveMany(b, keys, states); err != nil {
		return err
	}
	if err := r.tx.SendBatch(ctx, b).Close(); err != nil {
		return err
	}
	for _, q := range checks {
		for n, k := range q.at {
			if q.got[n] != localKeys[k] {
				return errOneByOne // the linked row is gone (write recreates it), or its key reads otherwise than the link's
			}
		}
	}
	return nil
}
