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
	codeProtocolViolation     = "08P01"
)

// classify wraps err with op and marks it permanent when retrying cannot
// fix it, so that the record is dead-lettered at its first attempt:
//   - class 22, data exceptions: a value the column's type refuses (22P02,
//     22003, 22007), invalid UTF-8 or a NUL byte (22021), a JSON value
//     jsonb refuses (22P05);
//   - class 23, integrity constraint violations (not null, unique, check,
//     foreign key);
//   - class 42, statements the table cannot take: a value of the wrong
//     type (42804), an unknown column (42703), a missing privilege;
//   - 08P01 at ERROR severity: the server refused the statement's bytes
//     (a NUL in a value sent as text) and the session goes on. At FATAL
//     severity the connection is gone, which is transient.
//
// Everything else, serialization failures (40001), deadlocks (40P01),
// timeouts and connection errors included, stays transient.
func classify(op string, err error) error {
	err = fmt.Errorf("%s: %w", op, err)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && len(pgErr.Code) == 5 {
		switch {
		case pgErr.Code[:2] == "22", pgErr.Code[:2] == "23", pgErr.Code[:2] == "42",
			pgErr.Code == codeProtocolViolation && pgErr.Severity == "ERROR":
			return cdc.Permanent(err)
		}
	}
	return err
}

// refused reports whether err is the server refusing a statement while the
// session lives on (an ERROR, not FATAL or PANIC): rolling back to a
// savepoint undoes it and the transaction goes on.
func refused(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Severity == "ERROR"
}

// readError is a failure to read a record back from its system while it
// is applied: it fails only that record, which is retried.
type readError struct{ err error }

func (e readError) Error() string { return e.err.Error() }
func (e readError) Unwrap() error { return e.err }

// failsAlone reports whether err fails only the record being applied: a
// refused statement, or a record that could not be read back.
func failsAlone(err error) bool {
	return refused(err) || errors.As(err, new(readError))
}

func hasCode(err error, code string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == code
}
