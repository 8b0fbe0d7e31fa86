package daemon

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/cdcd-dev/cdcd/cdc/pgwal"
	"github.com/cdcd-dev/cdcd/config"
)

// insertsOnly returns the tables of postgres.tables whose every pipeline
// takes inserts only (ops: [create]): the reader publishes such a table
// for inserts alone when it has no replica identity. A table without
// pipelines is not one of them (its changes go to the bus as they are).
func insertsOnly(cfg *config.Config) []pgwal.Table {
	var out []pgwal.Table
	for _, name := range cfg.Postgres.Tables {
		n := 0
		for _, p := range cfg.Pipelines {
			if p.From != name || cfg.IsInbound(p) {
				continue
			}
			if !slices.Equal(p.Ops, []string{config.OpCreate}) {
				n = -1
				break
			}
			n++
		}
		if t, err := pgwal.ParseTable(name); err == nil && n > 0 {
			out = append(out, t)
		}
	}
	return out
}

// CheckIdentity is the config.Checker of validate --check-db that refuses
// what the reader refuses before it touches the publication: a table
// without a replica identity, unless its pipelines take inserts only.
func CheckIdentity(ctx context.Context) config.Checker {
	return func(cfg *config.Config) error {
		if cfg.Validate() != nil {
			return nil
		}
		var tables []pgwal.Table
		for _, name := range cfg.Postgres.Tables {
			t, err := pgwal.ParseTable(name)
			if err != nil {
				return nil
			}
			tables = append(tables, t)
		}
		err := pgwal.CheckIdentity(ctx, cfg.Postgres.URL, tables, insertsOnly(cfg))
		var ie *pgwal.IdentityError
		switch {
		case err == nil:
			return nil
		case !errors.As(err, &ie):
			return config.FieldError{Path: "postgres.url", Msg: fmt.Sprintf("check replica identities: %v", err)}
		}
		var errs []error
		for _, t := range ie.Tables {
			path := "postgres.tables"
			if i := slices.Index(cfg.Postgres.Tables, t.String()); i >= 0 {
				path = fmt.Sprintf("postgres.tables[%d]", i)
			}
			errs = append(errs, config.FieldError{Path: path, Msg: ie.About(t)})
		}
		return errors.Join(errs...)
	}
}
