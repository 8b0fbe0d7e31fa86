package pgtext

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/cdcd-dev/cdcd/cdc/cdctest"
)

// TestBuiltinTypesMatchTheCatalog compares builtinTypes with the server's
// catalog: OIDs, names and array delimiters.
func TestBuiltinTypesMatchTheCatalog(t *testing.T) {
	pg := cdctest.StartPostgres(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pg.CreateDB(t, "types"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	checkBuiltinTypes(ctx, t, conn)
}

// checkBuiltinTypes compares builtinTypes with the server's catalog.
func checkBuiltinTypes(ctx context.Context, t *testing.T, conn *pgx.Conn) {
	for _, bt := range builtinTypes {
		var arrayOID uint32
		var name, delim string
		err := conn.QueryRow(ctx, `SELECT typarray, typname::text, typdelim::text FROM pg_type WHERE oid = $1`, bt.oid).Scan(&arrayOID, &name, &delim)
		if err != nil {
			t.Errorf("type oid %d (%s): %v", bt.oid, bt.name, err)
			continue
		}
		if arrayOID != bt.arrayOID || name != bt.name || delim[0] != bt.arrayRule().Delim {
			t.Errorf("type oid %d: catalog has %s, array %d, delim %q; table has %s, %d, %q",
				bt.oid, name, arrayOID, delim, bt.name, bt.arrayOID, bt.arrayRule().Delim)
		}
	}
}
