package pgwal

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// sessionSettings pin how the walsender formats values as text; pgoutput
// uses the session's settings, so leaving any of them to the server's
// defaults changes what consumers see (see values.go).
var sessionSettings = map[string]string{
	"client_encoding":    "UTF8",
	"TimeZone":           "UTC",
	"DateStyle":          "ISO",
	"IntervalStyle":      "iso_8601",
	"extra_float_digits": "3",
	"bytea_output":       "hex",
	"application_name":   "cdcd",
}

// connect opens a connection with the pinned session settings; replication
// makes it a logical replication (walsender) connection, which accepts only
// the simple query protocol.
func connect(ctx context.Context, url string, replication bool) (*pgconn.PgConn, error) {
	cfg, err := pgconn.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse postgres.url: %w", err)
	}
	for k, v := range sessionSettings {
		if _, set := cfg.RuntimeParams[k]; !set || k != "application_name" {
			cfg.RuntimeParams[k] = v
		}
	}
	if replication {
		cfg.RuntimeParams["replication"] = "database"
	}
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42501" {
			return nil, permanent(fmt.Errorf("role %q may not stream changes: %s; grant it with ALTER ROLE %s REPLICATION (or use a superuser)",
				cfg.User, pgErr.Message, quoteIdent(cfg.User)))
		}
		return nil, fmt.Errorf("connect to postgres %s:%d: %w", cfg.Host, cfg.Port, err)
	}
	return conn, nil
}

// Connect opens a plain (not replication) connection with the session
// settings of the stream, so values read as text encode to the JSON that
// captured events carry (AppendValueJSON).
func Connect(ctx context.Context, url string) (*pgconn.PgConn, error) {
	return connect(ctx, url, false)
}

// query runs one simple-protocol statement and returns its rows as text;
// a nil cell is SQL NULL.
func query(ctx context.Context, conn *pgconn.PgConn, sql string) ([][][]byte, error) {
	results, err := conn.Exec(ctx, sql).ReadAll()
	if err != nil {
		return nil, err
	}
	if len(results) == 0 {
		return nil, nil
	}
	return results[len(results)-1].Rows, nil
}

func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

func quoteLiteral(s string) string {
	return `'` + strings.ReplaceAll(s, `'`, `''`) + `'`
}

// permanentError marks a problem that retrying cannot fix: the operator
// must change the database or the configuration.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

func permanent(err error) error { return &permanentError{err} }

// IsPermanent reports whether err needs an operator's fix rather than a
// retry.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}
