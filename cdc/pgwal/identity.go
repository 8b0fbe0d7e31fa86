package pgwal

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// IdentityError lists tables that have no replica identity. Publishing
// their updates and deletes would make Postgres refuse the application's
// own UPDATE and DELETE on them, so cdcd refuses them first.
type IdentityError struct {
	// Tables have no replica identity (no primary key, REPLICA IDENTITY
	// NOTHING, or an identity index that is gone).
	Tables []Table
	// AllTables: postgres.tables is empty, so the publication would be FOR
	// ALL TABLES, which cannot publish some tables' inserts only.
	AllTables bool
}

func (e *IdentityError) Error() string {
	msgs := make([]string, len(e.Tables))
	for i, t := range e.Tables {
		msgs[i] = e.About(t)
	}
	return strings.Join(msgs, "\n")
}

// About says what is wrong with t and how to fix it.
func (e *IdentityError) About(t Table) string {
	s := fmt.Sprintf("table %s has no replica identity, so once published the application's UPDATE and DELETE on it would fail: add a primary key, or ALTER TABLE %s REPLICA IDENTITY FULL",
		t, t.quoted())
	if e.AllTables {
		return s + "; or list in postgres.tables the tables cdcd captures"
	}
	return s + "; or let every pipeline from it take inserts only (ops: [create]), which publishes its inserts alone"
}

// identityQuery selects, of the tables that match the condition %s, those
// without a replica identity.
const identityQuery = `SELECT n.nspname, c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND c.relpersistence = 'p' AND (%s)
AND NOT (c.relreplident = 'f'
	OR (c.relreplident = 'd' AND EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary))
	OR (c.relreplident = 'i' AND EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisreplident)))
ORDER BY 1, 2`

// withoutIdentity returns the tables among tables (every table a
// publication FOR ALL TABLES covers when tables is empty) that have no
// replica identity.
func withoutIdentity(ctx context.Context, conn *pgconn.PgConn, tables []Table) ([]Table, error) {
	cond := "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' AND NOT c.relispartition"
	if len(tables) > 0 {
		cond = "(n.nspname, c.relname) IN (" + tableList(tables) + ")"
	}
	rows, err := query(ctx, conn, fmt.Sprintf(identityQuery, cond))
	if err != nil {
		return nil, fmt.Errorf("look up replica identities: %w", err)
	}
	out := make([]Table, len(rows))
	for i, r := range rows {
		out[i] = Table{string(r[0]), string(r[1])}
	}
	return out, nil
}

// insertsOnly returns which tables to publish for inserts only: those
// without a replica identity that insertsOK allows. Any other table
// without one is an *IdentityError, which retrying cannot fix.
func insertsOnly(ctx context.Context, conn *pgconn.PgConn, tables, insertsOK []Table) ([]Table, error) {
	missing, err := withoutIdentity(ctx, conn, tables)
	if err != nil {
		return nil, err
	}
	var inserts, refused []Table
	for _, t := range missing {
		if len(tables) > 0 && slices.Contains(insertsOK, t) {
			inserts = append(inserts, t)
		} else {
			refused = append(refused, t)
		}
	}
	if len(refused) > 0 {
		return nil, permanent(&IdentityError{Tables: refused, AllTables: len(tables) == 0})
	}
	return inserts, nil
}

// CheckIdentity connects to url and returns an *IdentityError when a
// table the reader would publish has no replica identity and is not in
// insertsOK (tables whose every pipeline takes inserts only), as the
// reader refuses it before it touches the publication. tables and
// insertsOK are as in Config. It is for cdcd validate --check-db.
func CheckIdentity(ctx context.Context, url string, tables, insertsOK []Table) error {
	conn, err := connect(ctx, url, false)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = insertsOnly(ctx, conn, tables, insertsOK)
	return err
}
