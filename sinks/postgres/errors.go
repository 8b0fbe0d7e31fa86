package postgres

import (
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cdcd-dev/cdcd/cdc"
)

// SQLSTATEs this package looks for.
const (
	codeInsufficientPrivilege = "42501"
	codeObjectInUse           = "55006"
)

// classify wraps err with op and marks it permanent when retrying cannot
// fix it: integrity constraint violations (class 23), bad data (class 22)
// and statements the table cannot take (class 42: an unknown column, a
// missing privilege). Everything else, serialization failures (40001),
// deadlocks (40P01) and connection errors included, stays transient.
func classify(op string, err error) error {
	err = fmt.Errorf("%s: %w", op, err)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && len(pgErr.Code) == 5 {
		switch pgErr.Code[:2] {
		case "22", "23", "42":
			return cdc.Permanent(err)
		}
	}
	return err
}

func hasCode(err error, code string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == code
}
