package postgres

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cdcd-dev/cdcd/cdc"
)

// SQLSTATEs this package looks for.
const (
	codeInsufficientPrivilege = "42501"
	codeObjectInUse           = "55006"
	codeProtocolViolation     = "08P01"
	codeLockNotAvailable      = "55P03"
	codeReadOnlyTransaction   = "25006"
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
// Everything else stays retryable; of it, what is the server's trouble
// rather than the record's (serialization failures, deadlocks, timeouts,
// connection errors) fails the whole Write (see transient).
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
// statement refused for the record's sake (not the server's: see
// transient), or a record that could not be read back.
func failsAlone(err error) bool {
	return (refused(err) && !transient(err)) || errors.As(err, new(readError))
}

// transient reports whether err is the local server's trouble, not the
// records': it fails the whole Write (cdc.Transient), nothing applied, to
// be retried as it was, however long it lasts. That is
//   - class 40, the transaction rolled back: serialization failure
//     (40001), deadlock (40P01);
//   - 55P03, lock_not_available (lock_timeout, NOWAIT);
//   - class 57, operator intervention: a statement cancelled
//     (statement_timeout, pg_cancel_backend: 57014), the server shutting
//     down or starting up (57P01-57P03);
//   - class 08 (but 08P01 at ERROR, see classify), class 53 (too many
//     connections, disk full, out of memory), class 58 (I/O errors), and
//     25006 (a read-only transaction: the server is a standby now);
//   - no answer at all: the connection refused, reset, closed or timed
//     out.
//
// A record read back from its system failed for the system's sake, not
// the server's (readError): that is never transient here.
func transient(err error) bool {
	if errors.As(err, new(readError)) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		code := pgErr.Code
		switch {
		case code == codeProtocolViolation:
			return pgErr.Severity != "ERROR"
		case code == codeLockNotAvailable, code == codeReadOnlyTransaction:
			return true
		}
		for _, class := range [...]string{"08", "40", "53", "57", "58"} {
			if strings.HasPrefix(code, class) {
				return true
			}
		}
		return false
	}
	var netErr net.Error
	return errors.As(err, &netErr) || errors.As(err, new(*pgconn.ConnectError)) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, pgconn.ErrConnClosed) || pgconn.Timeout(err)
}

func hasCode(err error, code string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == code
}
