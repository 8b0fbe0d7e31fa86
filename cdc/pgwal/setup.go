package pgwal

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cdcd-dev/cdcd/cdc"
)

// minServerVersion is Postgres 14: pgoutput's messages option and granted
// replication-origin functions need it.
const minServerVersion = 140000

// slotState is what pg_replication_slots says about our slot.
type slotState struct {
	confirmed cdc.LSN
	active    bool
	activePID string
}

// errSlotBusy means another process streams from the slot: this instance
// waits as a standby.
var errSlotBusy = errors.New("replication slot is active in another process")

// checkServer refuses servers cdcd cannot stream from, with the fix.
func checkServer(ctx context.Context, conn *pgconn.PgConn) error {
	rows, err := query(ctx, conn, "SELECT current_setting('server_version_num'), current_setting('wal_level'), current_setting('server_version')")
	if err != nil {
		return fmt.Errorf("read server settings: %w", err)
	}
	num, _ := strconv.Atoi(string(rows[0][0]))
	if num < minServerVersion {
		return permanent(fmt.Errorf("postgres %s is too old: cdcd needs Postgres 14 or newer", rows[0][2]))
	}
	if level := string(rows[0][1]); level != "logical" {
		return permanent(fmt.Errorf("wal_level is %q; set wal_level=logical in postgresql.conf (ALTER SYSTEM SET wal_level = logical) and restart Postgres", level))
	}
	return nil
}

// checkTables verifies every configured table exists.
func checkTables(ctx context.Context, conn *pgconn.PgConn, tables []Table) error {
	if len(tables) == 0 {
		return nil
	}
	rows, err := query(ctx, conn, "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r','p') AND (n.nspname, c.relname) IN ("+tableList(tables)+")")
	if err != nil {
		return fmt.Errorf("look up tables: %w", err)
	}
	found := map[Table]bool{}
	for _, r := range rows {
		found[Table{string(r[0]), string(r[1])}] = true
	}
	var errs []error
	for _, t := range tables {
		if !found[t] {
			errs = append(errs, fmt.Errorf("table %s does not exist: create it or remove it from postgres.tables", t))
		}
	}
	if len(errs) > 0 {
		return permanent(errors.Join(errs...))
	}
	return nil
}

func tableList(tables []Table) string {
	parts := make([]string, len(tables))
	for i, t := range tables {
		parts[i] = "(" + quoteLiteral(t.Schema) + "," + quoteLiteral(t.Name) + ")"
	}
	return strings.Join(parts, ",")
}

// publication is one publication the reader streams from.
type publication struct {
	name string
	// tables it covers; empty means all tables.
	tables []Table
	// inserts: it publishes inserts only (publish = 'insert').
	inserts bool
	// lists says where its tables come from, for errors.
	lists string
}

// ensurePublication creates the publication if it is missing, and refuses
// one that covers other tables, or publishes more than inserts when it
// should publish inserts only.
func ensurePublication(ctx context.Context, conn *pgconn.PgConn, p publication) (created bool, err error) {
	name, tables := p.name, p.tables
	rows, err := query(ctx, conn, "SELECT puballtables, pubupdate OR pubdelete OR pubtruncate FROM pg_publication WHERE pubname = "+quoteLiteral(name))
	if err != nil {
		return false, fmt.Errorf("look up publication %q: %w", name, err)
	}
	if len(rows) == 0 {
		sql := "CREATE PUBLICATION " + quoteIdent(name) + " FOR ALL TABLES"
		if len(tables) > 0 {
			quoted := make([]string, len(tables))
			for i, t := range tables {
				quoted[i] = t.quoted()
			}
			sql = "CREATE PUBLICATION " + quoteIdent(name) + " FOR TABLE " + strings.Join(quoted, ", ")
		}
		if p.inserts {
			sql += " WITH (publish = 'insert')"
		}
		if _, err := query(ctx, conn, sql); err != nil {
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.Code == "42501" {
				return false, permanent(fmt.Errorf("create publication %q: %s; run %q as the table owner or a superuser, or list postgres.tables", name, pgErr.Message, sql))
			}
			return false, fmt.Errorf("create publication %q: %w", name, err)
		}
		return true, nil
	}
	allTables := string(rows[0][0]) == "t"
	if p.inserts && string(rows[0][1]) == "t" {
		return false, permanent(fmt.Errorf("publication %q publishes more than inserts of tables without a replica identity, which blocks their UPDATE and DELETE: ALTER PUBLICATION %s SET (publish = 'insert')",
			name, quoteIdent(name)))
	}
	if len(tables) == 0 {
		if !allTables {
			return false, permanent(fmt.Errorf("publication %q covers only some tables but postgres.tables is empty (all tables): list the tables in postgres.tables, or ALTER PUBLICATION / recreate it FOR ALL TABLES", name))
		}
		return false, nil
	}
	if allTables {
		return false, permanent(fmt.Errorf("publication %q covers all tables but postgres.tables lists %d: drop the publication (cdcd recreates it) or empty postgres.tables", name, len(tables)))
	}
	rows, err = query(ctx, conn, "SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = "+quoteLiteral(name))
	if err != nil {
		return false, fmt.Errorf("list tables of publication %q: %w", name, err)
	}
	var have, want, quoted []string
	for _, r := range rows {
		have = append(have, Table{string(r[0]), string(r[1])}.String())
	}
	for _, t := range tables {
		want = append(want, t.String())
		quoted = append(quoted, t.quoted())
	}
	slices.Sort(have)
	slices.Sort(want)
	slices.Sort(quoted)
	if !slices.Equal(have, want) {
		return false, permanent(fmt.Errorf("publication %q covers [%s] but %s [%s]: ALTER PUBLICATION %s SET TABLE %s, or fix postgres.tables",
			name, strings.Join(have, ", "), p.lists, strings.Join(want, ", "), quoteIdent(name), strings.Join(quoted, ", ")))
	}
	return false, nil
}

// readSlot returns the slot's state, or nil if it does not exist.
func readSlot(ctx context.Context, conn *pgconn.PgConn, slot, db string) (*slotState, error) {
	rows, err := query(ctx, conn, "SELECT plugin, database, confirmed_flush_lsn, active, active_pid, wal_status FROM pg_replication_slots WHERE slot_name = "+quoteLiteral(slot))
	if err != nil {
		return nil, fmt.Errorf("look up replication slot %q: %w", slot, err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	r := rows[0]
	if plugin := string(r[0]); plugin != "pgoutput" {
		return nil, permanent(fmt.Errorf("replication slot %q uses plugin %q, not pgoutput: set postgres.slot to another name", slot, plugin))
	}
	if slotDB := string(r[1]); slotDB != db {
		return nil, permanent(fmt.Errorf("replication slot %q belongs to database %q, not %q: set postgres.slot to another name", slot, slotDB, db))
	}
	if string(r[5]) == "lost" {
		return nil, permanent(fmt.Errorf("replication slot %q is lost: the server removed WAL it still needed, so changes were missed. Drop it (SELECT pg_drop_replication_slot('%s')), let cdcd recreate it, and backfill; raise max_slot_wal_keep_size to keep this from happening", slot, slot))
	}
	s := &slotState{active: string(r[3]) == "t", activePID: string(r[4])}
	if r[2] != nil {
		if s.confirmed, err = cdc.ParseLSN(string(r[2])); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// createSlot creates the logical slot through the replication protocol.
func createSlot(ctx context.Context, conn *pgconn.PgConn, slot string) (cdc.LSN, error) {
	res, err := pglogrepl.CreateReplicationSlot(ctx, conn, quoteIdent(slot), "pgoutput", pglogrepl.CreateReplicationSlotOptions{
		Mode:           pglogrepl.LogicalReplication,
		SnapshotAction: "(SNAPSHOT 'nothing')",
	})
	if err != nil {
		return 0, fmt.Errorf("create replication slot %q: %w", slot, err)
	}
	return cdc.ParseLSN(res.ConsistentPoint)
}

// primaryKeys maps each table with a primary key to its key columns, in
// key order.
func primaryKeys(ctx context.Context, conn *pgconn.PgConn) (map[Table][]string, error) {
	rows, err := query(ctx, conn, `SELECT n.nspname, c.relname, a.attname
FROM pg_index i
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) ON true
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
WHERE i.indisprimary AND n.nspname NOT IN ('pg_catalog', 'information_schema')
ORDER BY n.nspname, c.relname, k.ord`)
	if err != nil {
		return nil, fmt.Errorf("read primary keys: %w", err)
	}
	keys := map[Table][]string{}
	for _, r := range rows {
		t := Table{string(r[0]), string(r[1])}
		keys[t] = append(keys[t], string(r[2]))
	}
	return keys, nil
}
