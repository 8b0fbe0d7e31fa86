package applystate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// table is where the states are kept.
const table = "cdcd.apply_state"

// DB is what the states need of a connection; pgx.Tx, *pgx.Conn and
// *pgxpool.Pool have it.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Records are the states of one system's records in one local table.
type Records struct {
	System string        // the system the changes come from
	Table  string        // the local table, schema.table
	TTL    time.Duration // how long a tombstone refuses late updates
}

// Require fails when the state table is missing: store's migrations
// make it when cdcd starts on the database.
func Require(ctx context.Context, db DB) error {
	var exists bool
	if err := db.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", table).Scan(&exists); err != nil {
		return fmt.Errorf("look up %s: %w", table, err)
	}
	if !exists {
		return fmt.Errorf("%s does not exist: cdcd's migrations have not run on this database; start cdcd with postgres.url set to it, which applies them", table)
	}
	return nil
}

// Load locks and returns the state of key. A tombstone older than the TTL
// counts as no state at all.
func (r Records) Load(ctx context.Context, tx DB, key string) (State, error) {
	var (
		st      State
		version *time.Time
		deleted bool
		fields  []byte
	)
	err := tx.QueryRow(ctx, `SELECT version, event_id, deleted_at IS NOT NULL, COALESCE(deleted_at > now() - $4::interval, false), fields
		FROM cdcd.apply_state WHERE system = $1 AND table_name = $2 AND key = $3 FOR UPDATE`,
		r.System, r.Table, key, ttlInterval(r.TTL)).Scan(&version, &st.EventID, &deleted, &st.Tombstoned, &fields)
	if errors.Is(err, pgx.ErrNoRows) {
		return State{}, nil
	}
	if err != nil {
		return State{}, fmt.Errorf("read the applied version: %w", err)
	}
	return loaded(st, version, deleted, fields)
}

// loaded completes a state read from its row.
func loaded(st State, version *time.Time, deleted bool, fields []byte) (State, error) {
	if deleted && !st.Tombstoned {
		return State{}, nil
	}
	st.Exists = true
	if version != nil {
		st.Version = *version
	}
	if fields == nil {
		st.Fields = map[string]Stamp{anyColumn: {st.Version, st.EventID}}
		return st, nil
	}
	var err error
	if st.Fields, err = decodeFields(fields, Stamp{st.Version, st.EventID}); err != nil {
		return State{}, fmt.Errorf("decode the applied versions of the columns: %w", err)
	}
	return st, nil
}

// Save records st as applied to key; deleted marks a tombstone.
func (r Records) Save(ctx context.Context, tx DB, key string, st State, deleted bool) error {
	var version *time.Time
	if !st.Version.IsZero() {
		version = &st.Version
	}
	fields := encodeFields(st.Fields, Stamp{st.Version, st.EventID})
	_, err := tx.Exec(ctx, `INSERT INTO cdcd.apply_state AS s (system, table_name, key, version, event_id, deleted_at, fields)
		VALUES ($1, $2, $3, $4, $5, CASE WHEN $6::bool THEN now() END, $7::jsonb)
		ON CONFLICT (system, table_name, key) DO UPDATE SET
			version = COALESCE(EXCLUDED.version, s.version),
			event_id = EXCLUDED.event_id,
			deleted_at = EXCLUDED.deleted_at,
			fields = EXCLUDED.fields`,
		r.System, r.Table, key, version, st.EventID, deleted, string(fields))
	if err != nil {
		return fmt.Errorf("record the applied version: %w", err)
	}
	return nil
}

// LoadMany is Load for each of keys, in one query; the result holds the
// state of keys[i] at i. The keys must be distinct.
func (r Records) LoadMany(ctx context.Context, tx pgx.Tx, keys []string) ([]State, error) {
	out := make([]State, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	b := &pgx.Batch{}
	r.QueueLoadMany(b, keys, out)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, err
	}
	return out, nil
}

// QueueLoadMany queues LoadMany's query in b, for a caller that sends it
// with others in one round trip: once b's results are read, out[i]
// holds the state of keys[i]. out must be as long as keys.
func (r Records) QueueLoadMany(b *pgx.Batch, keys []string, out []State) {
	if len(keys) == 0 {
		return
	}
	// Each key is looked up by the primary key (LATERAL): a plan made
	// when the table was small must not scan it whole for every batch.
	b.Queue(`SELECT k.ord, s.version, s.event_id, s.deleted_at IS NOT NULL, COALESCE(s.deleted_at > now() - $4::interval, false), s.fields
		FROM (SELECT * FROM unnest($3::text[]) WITH ORDINALITY AS k(key, ord) ORDER BY key) k
		CROSS JOIN LATERAL (SELECT * FROM cdcd.apply_state WHERE system = $1 AND table_name = $2 AND key = k.key FOR UPDATE) s`,
		r.System, r.Table, keys, ttlInterval(r.TTL)).Query(func(rows pgx.Rows) error {
		var (
			ord     int64
			st      State
			version *time.Time
			deleted bool
			fields  []byte
		)
		_, err := pgx.ForEachRow(rows, []any{&ord, &version, &st.EventID, &deleted, &st.Tombstoned, &fields}, func() error {
			if ord < 1 || ord > int64(len(keys)) {
				return fmt.Errorf("state %d reported of %d", ord, len(keys))
			}
			got, err := loaded(st, version, deleted, fields)
			out[ord-1] = got
			return err
		})
		if err != nil {
			return fmt.Errorf("read the applied versions: %w", err)
		}
		return nil
	})
}

// SaveMany is Save for each of keys, none deleted, in one statement.
// The keys must be distinct.
func (r Records) SaveMany(ctx context.Context, tx pgx.Tx, keys []string, states []State) error {
	if len(keys) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	if err := r.QueueSaveMany(b, keys, states); err != nil {
		return err
	}
	return tx.SendBatch(ctx, b).Close()
}

// QueueSaveMany queues SaveMany's statement in b, for a caller that sends
// it with others in one round trip.
func (r Records) QueueSaveMany(b *pgx.Batch, keys []string, states []State) error {
	if len(keys) == 0 {
		return nil
	}
	versions, events, fields := make([]*time.Time, len(keys)), make([]string, len(keys)), make([]string, len(keys))
	for i, st := range states {
		if !st.Version.IsZero() {
			versions[i] = &st.Version
		}
		events[i], fields[i] = st.EventID, string(encodeFields(st.Fields, Stamp{st.Version, st.EventID}))
	}
	q := b.Queue(`INSERT INTO cdcd.apply_state AS s (system, table_name, key, version, event_id, deleted_at, fields)
		SELECT $1, $2, k.key, k.version, k.event_id, NULL, k.fields::jsonb
		FROM unnest($3::text[], $4::timestamptz[], $5::text[], $6::text[]) AS k(key, version, event_id, fields)
		ON CONFLICT (system, table_name, key) DO UPDATE SET
			version = COALESCE(EXCLUDED.version, s.version),
			event_id = EXCLUDED.event_id,
			deleted_at = EXCLUDED.deleted_at,
			fields = EXCLUDED.fields`,
		r.System, r.Table, keys, versions, events, fields)
	q.Fn = func(br pgx.BatchResults) error {
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("record the applied versions: %w", err)
		}
		return nil
	}
	return nil
}

// pruneChunk bounds the states one DELETE removes, so pruning a large
// backlog never holds locks or a transaction for long.
const pruneChunk = 5000

// Prune removes the expired tombstones of the records, in chunks of
// bounded size, each in its own transaction, and returns how many it
// removed.
func (r Records) Prune(ctx context.Context, db DB) (int64, error) {
	var total int64
	for {
		tag, err := db.Exec(ctx, `DELETE FROM cdcd.apply_state WHERE (system, table_name, key) IN (
			SELECT system, table_name, key FROM cdcd.apply_state
			WHERE system = $1 AND table_name = $2 AND deleted_at < now() - $3::interval LIMIT $4)`,
			r.System, r.Table, ttlInterval(r.TTL), pruneChunk)
		if err != nil {
			return total, fmt.Errorf("prune expired tombstones: %w", err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < pruneChunk {
			return total, nil
		}
		if err := ctx.Err(); err != nil {
			return total, err
		}
	}
}

func ttlInterval(d time.Duration) string {
	return fmt.Sprintf("%d microseconds", d.Microseconds())
}
