package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/cdcd-dev/cdcd/syncstate"
	"github.com/jackc/pgx/v5"
)

// DeadLetterFilter selects dead letters for ListDeadLetters. Zero fields
// select everything.
type DeadLetterFilter struct {
	Pipeline string
	Status   LetterStatus
	// Limit is the most rows returned; 0 means no limit.
	Limit int
}

// ListDeadLetters returns the dead letters that match f, newest first,
// without their Record and Event (GetDeadLetter has them).
func (s *Store) ListDeadLetters(ctx context.Context, f DeadLetterFilter) ([]DeadLetter, error) {
	cols := slices.Clone(letterColumns)
	for i, c := range cols {
		if c == "record" || c == "event" {
			cols[i] = "NULL::bytea"
		}
	}
	var (
		where []string
		args  []any
	)
	if f.Pipeline != "" {
		args = append(args, f.Pipeline)
		where = append(where, "pipeline = $"+strconv.Itoa(len(args)))
	}
	if f.Status != "" {
		args = append(args, string(f.Status))
		where = append(where, "status = $"+strconv.Itoa(len(args)))
	}
	q := "SELECT " + strings.Join(cols, ", ") + " FROM cdcd.dead_letters"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id DESC"
	if f.Limit > 0 {
		args = append(args, f.Limit)
		q += " LIMIT $" + strconv.Itoa(len(args))
	}
	rows, _ := s.pool.Query(ctx, q, args...)
	letters, err := pgx.CollectRows(rows, scanLetter)
	if err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	return letters, nil
}

// GetDeadLetter returns dead letter id with everything stored about it. A
// missing id is an error wrapping ErrNotFound.
func (s *Store) GetDeadLetter(ctx context.Context, id int64) (DeadLetter, error) {
	rows, _ := s.pool.Query(ctx, "SELECT "+strings.Join(letterColumns, ", ")+" FROM cdcd.dead_letters WHERE id = $1", id)
	l, err := pgx.CollectExactlyOneRow(rows, scanLetter)
	if errors.Is(err, pgx.ErrNoRows) {
		return l, fmt.Errorf("dead letter %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return l, fmt.Errorf("get dead letter %d: %w", id, err)
	}
	return l, nil
}

// RequestReplay marks the dead letters ids for replay and returns how many
// it marked: only dead ones are; other ids are left as they are. The
// pipelines of a running cdcd take them with DeadLetters.Replays.
func (s *Store) RequestReplay(ctx context.Context, ids []int64) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	tag, err := s.pool.Exec(ctx, `
		UPDATE cdcd.dead_letters SET status = 'replay', status_at = now()
		WHERE id = ANY($1) AND status = 'dead'`, ids)
	if err != nil {
		return 0, fmt.Errorf("request replay of %d dead letters: %w", len(ids), err)
	}
	return int(tag.RowsAffected()), nil
}

// RequestReplayAll marks every dead letter of pipeline for replay and
// returns how many it marked.
func (s *Store) RequestReplayAll(ctx context.Context, pipeline string) (int, error) {
	tag, err := s.pool.Exec(ctx, `
		UPDATE cdcd.dead_letters SET status = 'replay', status_at = now()
		WHERE pipeline = $1 AND status = 'dead'`, pipeline)
	if err != nil {
		return 0, fmt.Errorf("request replay of pipeline %s: %w", pipeline, err)
	}
	return int(tag.RowsAffected()), nil
}

// Discard marks the dead letters ids discarded: they are kept for the record
// but never replayed. Only dead letters that are dead or waiting for replay
// are discarded; it returns how many were.
func (s *Store) Discard(ctx context.Context, ids []int64) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	tag, err := s.pool.Exec(ctx, `
		UPDATE cdcd.dead_letters SET status = 'discarded', status_at = now(), resolved_at = now()
		WHERE id = ANY($1) AND status IN ('dead', 'replay')`, ids)
	if err != nil {
		return 0, fmt.Errorf("discard %d dead letters: %w", len(ids), err)
	}
	return int(tag.RowsAffected()), nil
}

func qualified(alias string, cols []string) string {
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = alias + "." + c
	}
	return strings.Join(q, ", ")
}

func sortByID(letters []syncstate.DeadLetter) {
	slices.SortFunc(letters, func(a, b syncstate.DeadLetter) int { return cmp.Compare(a.ID, b.ID) })
}
