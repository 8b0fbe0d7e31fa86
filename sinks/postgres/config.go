package postgres

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/sinks/postgres/target"
)

// Delete policies.
const (
	DeleteRow    = "delete" // delete the local row
	DeleteSoft   = "soft"   // set soft_delete_column to now()
	DeleteIgnore = "ignore" // leave the local row alone
)

// Config is the config of the "postgres" system type: one local table that
// receives the changes of a remote system.
type Config struct {
	// URL is the connection string of the local database.
	URL string `yaml:"url"`
	// Table is the target, schema.table.
	Table string `yaml:"table"`
	// Match names the columns a record is matched on (an email or external
	// id column, or the primary key). They need a unique index or
	// constraint, which the upsert's ON CONFLICT uses. A record's match
	// values come from its Fields, or else from its Key (the JSON of the
	// local key, as its link has it).
	Match []string `yaml:"match"`
	// OnDelete is delete (default), soft or ignore.
	OnDelete string `yaml:"on_delete"`
	// SoftDeleteColumn is set to now() on a soft delete. Default deleted_at.
	SoftDeleteColumn string `yaml:"soft_delete_column"`
	// Origin is the system the changes come from; the transactions that
	// apply them are tagged with it so they are never sent back there.
	// Default: the system's name.
	Origin string `yaml:"origin"`
	// TombstoneTTL is how long a deleted record's updates are refused.
	// Default 24h.
	TombstoneTTL time.Duration `yaml:"tombstone_ttl"`
}

// DefaultConfig returns a config with its defaults set.
func DefaultConfig() *Config {
	return &Config{OnDelete: DeleteRow, SoftDeleteColumn: "deleted_at", TombstoneTTL: 24 * time.Hour}
}

// Validate checks the config offline.
func (c *Config) Validate() error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, config.FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	if c.URL == "" {
		bad("url", "required: a postgres:// connection string")
	} else if _, err := pgxpool.ParseConfig(c.URL); err != nil {
		bad("url", "not a valid connection string") // the parse error may quote a password
	}
	if _, _, ok := target.Split(c.Table); !ok {
		bad("table", "%q is not schema.table", c.Table)
	}
	if len(c.Match) == 0 {
		bad("match", "required: the column(s) a record is matched on")
	}
	seen := map[string]bool{}
	for i, m := range c.Match {
		if m == "" || seen[m] {
			bad(fmt.Sprintf("match[%d]", i), "empty or repeated column %q", m)
		}
		seen[m] = true
	}
	switch c.OnDelete {
	case DeleteRow, DeleteIgnore:
	case DeleteSoft:
		if c.SoftDeleteColumn == "" {
			bad("soft_delete_column", "required when on_delete is soft")
		}
	default:
		bad("on_delete", "%q is not delete, soft or ignore", c.OnDelete)
	}
	if strings.ContainsAny(c.Origin, "\x00") {
		bad("origin", "must not contain NUL")
	}
	if c.TombstoneTTL <= 0 {
		bad("tombstone_ttl", "must be positive")
	}
	return errors.Join(errs...)
}
