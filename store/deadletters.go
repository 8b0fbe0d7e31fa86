package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/jobs/failures"
	"github.com/cdcd-dev/cdcd/syncstate"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// LetterStatus is where a dead letter is in its lifecycle:
//
//	dead ──(operator: replay)──► replay ──(pipeline: Replays)──► replaying ──(Resolve ok)──► replayed
//	  ▲                                                              │
//	  └───────────────────────────(Resolve with an error)────────────┘
//
// An operator may discard a dead letter that is dead or waiting for replay.
type LetterStatus string

const (
	StatusDead      LetterStatus = "dead"
	StatusReplay    LetterStatus = "replay"    // an operator asked for a replay, or the record a claim waited on was deleted
	StatusReplaying LetterStatus = "replaying" // a pipeline took it
	StatusReplayed  LetterStatus = "replayed"
	StatusDiscarded LetterStatus = "discarded"
)

// LetterStatuses lists every status in lifecycle order.
func LetterStatuses() []LetterStatus {
	return []LetterStatus{StatusDead, StatusReplay, StatusReplaying, StatusReplayed, StatusDiscarded}
}

// ReplayLease is how long a taken dead letter stays with the pipeline that
// took it. One not resolved by then (its process died) is taken again:
// replays are at-least-once, like every delivery.
const ReplayLease = 15 * time.Minute

// ErrNotReplaying reports a Resolve of a dead letter that no pipeline holds
// for replay.
var ErrNotReplaying = errors.New("not being replayed")

// DeadLetter is a stored dead letter with its lifecycle.
type DeadLetter struct {
	syncstate.DeadLetter
	Status LetterStatus
	// StatusAt is when Status last changed.
	StatusAt time.Time
	// ResolvedAt is when it was replayed or discarded; zero before.
	ResolvedAt time.Time
	// LastError is the error of the last failed replay.
	LastError string
}

// DeadLetters stores dead letters in cdcd.dead_letters. It implements
// syncstate.DeadLetters.
type DeadLetters struct {
	pool *pgxpool.Pool
	// topic marks new letters to be published to the pipeline's
	// dead-letter topic (DeadLettersToTopic).
	topic bool
}

// Put stores letters in one statement, all or none, with status dead. IDs
// are assigned by the store; a zero FailedAt means now. Whatever bytes a
// letter holds, it can be stored: Record and Event are kept byte for byte,
// and so is a Key that text cannot hold (a NUL, invalid UTF-8), beside a
// readable local_key. Other text (ids, names, the error) that text cannot
// hold is stored with U+FFFD in place of the bytes it refuses. An error
// longer than syncstate.MaxErrorBytes is stored cut to that, with a note
// saying so (syncstate.CutError).
//
// A letter for a change that already has an open one (dead, waiting for or
// in replay: the same pipeline, object, record and event, failing again
// after a re-send) adds its attempts to that letter instead of making a
// second. From DeadLettersToTopic, the new letters wait to be published
// (PublishDeadLetters); a merged one is not published again.
//
// A new letter of a change an import job handed over (event id
// "import/<job>/...") counts in that job's errors, with a job error
// linked to the letter (failures.Record), in the same transaction.
func (d *DeadLetters) Put(ctx context.Context, letters []syncstate.DeadLetter) error {
	letters = onePerChange(letters)
	if len(letters) == 0 {
		return nil
	}
	n := len(letters)
	pipe, sys, obj, tbl, key, evID, op, errText := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	rec, ev, rawKey := make([][]byte, n), make([][]byte, n), make([][]byte, n)
	claimed := make([]*string, n)
	attempts := make([]int32, n)
	failed := make([]time.Time, n)
	now := time.Now()
	for i, l := range letters {
		pipe[i], sys[i], obj[i], tbl[i], key[i], evID[i] = storable(l.Pipeline), storable(l.System), storable(l.Object), storable(l.Table), storable(l.Key), storable(l.EventID)
		op[i], errText[i], attempts[i], failed[i] = l.Op.String(), storedError(l.Error), int32(l.Attempts), l.FailedAt
		if l.FailedAt.IsZero() {
			failed[i] = now
		}
		if key[i] != l.Key {
			rawKey[i] = []byte(l.Key)
		}
		if l.ClaimedID != "" {
			claimed[i] = &l.ClaimedID
		}
		if len(l.Record) > 0 {
			rec[i] = l.Record
		}
		if len(l.Event) > 0 {
			ev[i] = l.Event
		}
	}
	imports := false
	for _, l := range letters {
		if _, ok := failures.ImportJob(l.EventID); ok {
			imports = true
			break
		}
	}
	// xmax = 0 tells a letter inserted from one merged into an open one.
	put := func(q querier) error {
		rows, _ := q.Query(ctx, `
			INSERT INTO cdcd.dead_letters (pipeline, system, object, local_table, local_key, raw_key, event_id, op, record, event, error, attempts, failed_at, claimed_id, topic_pending)
			SELECT *, $15::boolean FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bytea[], $7::text[], $8::text[], $9::bytea[], $10::bytea[], $11::text[], $12::int4[], $13::timestamptz[], $14::text[])
			ON CONFLICT (pipeline, object, local_key, event_id) WHERE status IN ('dead', 'replay', 'replaying')
			DO UPDATE SET attempts = cdcd.dead_letters.attempts + EXCLUDED.attempts
			RETURNING id, event_id, local_key, error, xmax = 0`,
			pipe, sys, obj, tbl, key, rawKey, evID, op, rec, ev, errText, attempts, failed, claimed, d.topic)
		var fs []failures.Failure
		var f failures.Failure
		var event string
		var added bool
		_, err := pgx.ForEachRow(rows, []any{&f.DeadLetter, &event, &f.Record, &f.Error, &added}, func() error {
			if job, ok := failures.ImportJob(event); ok && added {
				f.Job = job
				fs = append(fs, f)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("put %d dead letters: %w", n, err)
		}
		return failures.Record(ctx, q, fs)
	}
	q := on(ctx, d.pool)
	if _, inTx := q.(pgx.Tx); imports && !inTx {
		return pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error { return put(tx) })
	}
	return put(q)
}

// onePerChange merges letters of the same change (pipeline, object,
// record and event), adding their attempts to the first: one statement
// cannot insert and update the same row.
func onePerChange(letters []syncstate.DeadLetter) []syncstate.DeadLetter {
	type change struct{ pipeline, object, key, event string }
	first := make(map[change]int, len(letters))
	out := letters[:0:0]
	for _, l := range letters {
		c := change{storable(l.Pipeline), storable(l.Object), storable(l.Key), storable(l.EventID)}
		if i, ok := first[c]; ok {
			out[i].Attempts += l.Attempts
			continue
		}
		first[c] = len(out)
		out = append(out, l)
	}
	return out
}

// ReplayClaims marks for replay the dead letters of pipeline that claimed
// one of ids (DeadLetter.ClaimedID) and are dead, and returns how many it
// marked. The pipeline calls it once it delivered the delete of the
// record that held them (syncstate.ClaimReplayer).
func (d *DeadLetters) ReplayClaims(ctx context.Context, pipeline string, ids []syncstate.ExternalRef) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	obj, ext := make([]string, len(ids)), make([]string, len(ids))
	for i, r := range ids {
		obj[i], ext[i] = r.Object, r.ID
	}
	tag, err := on(ctx, d.pool).Exec(ctx, `
		UPDATE cdcd.dead_letters d SET status = 'replay', status_at = now()
		FROM unnest($2::text[], $3::text[]) AS r(object, claimed_id)
		WHERE d.pipeline = $1 AND d.object = r.object AND d.claimed_id = r.claimed_id AND d.status = 'dead'`,
		pipeline, obj, ext)
	if err != nil {
		return 0, fmt.Errorf("mark the dead letters of %s claiming %d ids for replay: %w", pipeline, len(ids), err)
	}
	return int(tag.RowsAffected()), nil
}

// storable is s as a text column holds it: valid UTF-8 without NUL, each
// byte it cannot hold replaced by U+FFFD.
func storable(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// storedError is an error's text as a dead letter keeps it: storable,
// and cut to syncstate.MaxErrorBytes.
func storedError(text string) string {
	return syncstate.CutError(storable(text), syncstate.MaxErrorBytes)
}

// Replays takes up to limit dead letters of pipeline that an operator asked
// to replay, oldest first, and marks them replaying. A dead letter is taken
// by one caller only, however many call at once, until ReplayLease passes
// without a Resolve.
func (d *DeadLetters) Replays(ctx context.Context, pipeline string, limit int) ([]syncstate.DeadLetter, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, _ := d.pool.Query(ctx, `
		WITH taken AS (
			SELECT id FROM cdcd.dead_letters
			WHERE pipeline = $1
			  AND (status = 'replay' OR (status = 'replaying' AND status_at < now() - make_interval(secs => $3)))
			ORDER BY id
			LIMIT $2
			FOR UPDATE SKIP LOCKED)
		UPDATE cdcd.dead_letters d SET status = 'replaying', status_at = now()
		FROM taken WHERE d.id = taken.id
		RETURNING `+qualified("d", letterColumns),
		pipeline, limit, ReplayLease.Seconds())
	letters, err := pgx.CollectRows(rows, scanLetter)
	if err != nil {
		return nil, fmt.Errorf("take dead letters of %s for replay: %w", pipeline, err)
	}
	out := make([]syncstate.DeadLetter, len(letters))
	for i := range letters {
		out[i] = letters[i].DeadLetter
	}
	sortByID(out)
	return out, nil
}

// Resolve records the outcome of replaying dead letter id, which Replays
// returned: nil marks it replayed, an error puts it back to dead with the
// error as LastError (stored as Put stores a letter's error). Either way it counts one more attempt.
// syncstate.ErrReplayInterrupted instead puts it back to wait for a replay,
// counting nothing. A dead letter that is not replaying is an error
// wrapping ErrNotReplaying or ErrNotFound.
func (d *DeadLetters) Resolve(ctx context.Context, id int64, replayErr error) error {
	if errors.Is(replayErr, syncstate.ErrReplayInterrupted) {
		return d.release(ctx, id)
	}
	var msg *string
	if replayErr != nil {
		s := storedError(replayErr.Error())
		msg = &s
	}
	tag, err := on(ctx, d.pool).Exec(ctx, `
		UPDATE cdcd.dead_letters SET
			status      = CASE WHEN $2::text IS NULL THEN 'replayed' ELSE 'dead' END,
			status_at   = now(),
			resolved_at = CASE WHEN $2::text IS NULL THEN now() END,
			last_error  = coalesce($2::text, last_error),
			attempts    = attempts + 1
		WHERE id = $1 AND status = 'replaying'`, id, msg)
	if err != nil {
		return fmt.Errorf("resolve dead letter %d: %w", id, err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var status string
	err = on(ctx, d.pool).QueryRow(ctx, "SELECT status FROM cdcd.dead_letters WHERE id = $1", id).Scan(&status)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("resolve dead letter %d: %w", id, ErrNotFound)
	case err != nil:
		return fmt.Errorf("resolve dead letter %d: %w", id, err)
	}
	return fmt.Errorf("resolve dead letter %d (status %s): %w", id, status, ErrNotReplaying)
}

func (d *DeadLetters) release(ctx context.Context, id int64) error {
	tag, err := on(ctx, d.pool).Exec(ctx, `
		UPDATE cdcd.dead_letters SET status = 'replay', status_at = now()
		WHERE id = $1 AND status = 'replaying'`, id)
	if err != nil {
		return fmt.Errorf("release dead letter %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("release dead letter %d: %w", id, ErrNotReplaying)
	}
	return nil
}

// letterColumns is the column list scanLetter reads.
var letterColumns = []string{"id", "pipeline", "system", "object", "local_table", "local_key", "raw_key", "event_id", "op",
	"record", "event", "error", "attempts", "failed_at", "status", "status_at", "resolved_at", "last_error"}

func scanLetter(row pgx.CollectableRow) (DeadLetter, error) {
	var (
		l          DeadLetter
		op, status string
		rec, ev    []byte
		rawKey     []byte
		attempts   int32
		resolvedAt *time.Time
		lastError  *string
	)
	err := row.Scan(&l.ID, &l.Pipeline, &l.System, &l.Object, &l.Table, &l.Key, &rawKey, &l.EventID, &op,
		&rec, &ev, &l.Error, &attempts, &l.FailedAt, &status, &l.StatusAt, &resolvedAt, &lastError)
	if err != nil {
		return l, err
	}
	if op != "" {
		l.Op = cdc.Op(op[0])
	}
	if rawKey != nil {
		l.Key = string(rawKey)
	}
	l.Record, l.Event, l.Attempts, l.Status = rec, ev, int(attempts), LetterStatus(status)
	if resolvedAt != nil {
		l.ResolvedAt = *resolvedAt
	}
	if lastError != nil {
		l.LastError = *lastError
	}
	return l, nil
}
