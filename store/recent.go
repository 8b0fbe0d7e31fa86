package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdcd-dev/cdcd/internal/jsonvalue"
	"github.com/cdcd-dev/cdcd/syncstate"
)

// RecentWindow is how long a write to a system's record is looked for:
// a webhook reporting its values back within it is an echo. Vendors
// deliver webhooks late, but not this late. Writes are kept for
// retention.recent_writes, at most this (config.MaxRecentWrites).
const RecentWindow = 15 * time.Minute

// recentPerRecord bounds the writes of one record read back.
const recentPerRecord = 4

// RecentWrites remembers in cdcd.recent_writes the values cdcd wrote to
// systems' records, for every process of the deployment.
type RecentWrites struct {
	s *Store
}

// RecentWrites returns the store's recent writes.
func (s *Store) RecentWrites() *RecentWrites { return &RecentWrites{s: s} }

// Remember stores each link's Base as a write to its system's record, in
// one statement. Links without an external id or a base are no writes.
func (r *RecentWrites) Remember(ctx context.Context, links []syncstate.Link) error {
	var sys, obj, ids []string
	var fields [][]byte
	for _, l := range links {
		if l.ExternalID == "" || len(l.Base) == 0 || l.Deleted {
			continue
		}
		b, err := jsonvalue.Marshal(l.Base)
		if err != nil {
			return fmt.Errorf("encode the write to %s %s %s: %w", l.System, l.Object, l.ExternalID, err)
		}
		sys, obj, ids, fields = append(sys, l.System), append(obj, l.Object), append(ids, l.ExternalID), append(fields, b)
	}
	if len(sys) == 0 {
		return nil
	}
	_, err := on(ctx, r.s.pool).Exec(ctx, `
		INSERT INTO cdcd.recent_writes (system, object, external_id, fields)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[])`, sys, obj, ids, fields)
	if err != nil {
		return fmt.Errorf("remember %d writes: %w", len(sys), err)
	}
	return nil
}

// ReadRecentWrites returns the last writes to a system's record within
// RecentWindow, newest first, read in tx (the apply's transaction, so
// that it needs no second connection).
func ReadRecentWrites(ctx context.Context, tx pgx.Tx, system, object, externalID string) ([]map[string]any, error) {
	rows, _ := tx.Query(ctx, `
		SELECT fields FROM cdcd.recent_writes
		WHERE system = $1 AND object = $2 AND external_id = $3 AND written_at > now() - $4::interval
		ORDER BY written_at DESC LIMIT $5`,
		system, object, externalID, RecentWindow, recentPerRecord)
	var out []map[string]any
	var b []byte
	_, err := pgx.ForEachRow(rows, []any{&b}, func() error {
		var m map[string]any
		if err := decodeBase(b, &m); err != nil {
			return err
		}
		out = append(out, m)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the recent writes to %s %s %s: %w", system, object, externalID, err)
	}
	return out, nil
}

// PruneRecentWrites deletes the writes older than olderThan in chunks
// like PruneAudit and returns how many it deleted.
func (s *Store) PruneRecentWrites(ctx context.Context, olderThan time.Duration) (int64, error) {
	cutoff := time.Now().Add(-olderThan)
	n, err := s.pruneChunks(ctx, `DELETE FROM cdcd.recent_writes WHERE id IN (
		SELECT id FROM cdcd.recent_writes WHERE written_at < $1 ORDER BY written_at LIMIT $2)`, cutoff)
	if err != nil && ctx.Err() == nil {
		err = fmt.Errorf("prune recent writes before %s: %w", cutoff.Format(time.RFC3339), err)
	}
	return n, err
}

// ReadRecentWritesOf is ReadRecentWrites for each of the system's
// records ids[i] of objects[i], in one query in tx; the result holds the
// writes of record i at i.
func ReadRecentWritesOf(ctx context.Context, tx pgx.Tx, system string, objects, ids []string) ([][]map[string]any, error) {
	out := make([][]map[string]any, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	b := &pgx.Batch{}
	QueueReadRecentWritesOf(b, system, objects, ids, out)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, err
	}
	return out, nil
}

// QueueReadRecentWritesOf queues ReadRecentWritesOf's query in b, for a
// caller that sends it with others in one round trip: once b's results
// are read, out[i] holds the writes of record i. out must be as long as
// ids.
func QueueReadRecentWritesOf(b *pgx.Batch, system string, objects, ids []string, out [][]map[string]any) {
	if len(ids) == 0 {
		return
	}
	b.Queue(`
		SELECT r.ord, w.fields FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS r(object, external_id, ord)
		CROSS JOIN LATERAL (SELECT fields, written_at FROM cdcd.recent_writes
			WHERE system = $1 AND object = r.object AND external_id = r.external_id AND written_at > now() - $4::interval
			ORDER BY written_at DESC LIMIT $5) w
		ORDER BY r.ord, w.written_at DESC`,
		system, objects, ids, RecentWindow, recentPerRecord).Query(func(rows pgx.Rows) error {
		var (
			ord int64
			b   []byte
		)
		_, err := pgx.ForEachRow(rows, []any{&ord, &b}, func() error {
			if ord < 1 || ord > int64(len(ids)) {
				return fmt.Errorf("record %d reported of %d", ord, len(ids))
			}
			var m map[string]any
			if err := decodeBase(b, &m); err != nil {
				return err
			}
			out[ord-1] = append(out[ord-1], m)
			return nil
		})
		if err != nil {
			return fmt.Errorf("read the recent writes to %d records of %s: %w", len(ids), system, err)
		}
		return nil
	})
}
