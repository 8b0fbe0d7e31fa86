package transform

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/config"
)

// Check compiles the mapping of every pipeline of cfg and renders the
// templates of the system it writes to over a sample record of it,
// offline. It is a config.Checker: main registers it
// (reg.Checker(transform.Check)) so that Load reports expressions that do
// not compile, and template fields no record holds, at their paths.
func Check(cfg *config.Config) error {
	var errs []error
	for i, p := range cfg.Pipelines {
		_, err := New(SpecOf(p), offline{}, zerolog.Nop())
		for _, fe := range fieldErrors(err) {
			errs = append(errs, config.FieldError{Path: pipelinePath(i, fe.Path), Msg: fe.Msg})
		}
	}
	errs = append(errs, checkTemplates(cfg)...)
	return errors.Join(errs...)
}

// offline is the LookupSource of checks, which never look anything up.
type offline struct{}

func (offline) Lookup(context.Context, string, map[string]any, []string) (map[string]any, error) {
	return nil, errors.New("no lookups while checking")
}

// CheckSchema returns a config.Checker that connects to postgres.url and
// checks that every table and column the pipelines name exists: from
// tables, map sources, columns named in expressions (after.x, before.x,
// key.x), columns.allow and deny, link.column, and lookup tables, key
// columns and columns. It checks only a config that is otherwise valid.
// It is for cdcd validate --check-db; Load stays offline without it.
func CheckSchema(ctx context.Context) config.Checker {
	return func(cfg *config.Config) error {
		if cfg.Validate() != nil || Check(cfg) != nil {
			return nil
		}
		conn, err := pgx.Connect(ctx, cfg.Postgres.URL)
		if err != nil {
			return config.FieldError{Path: "postgres.url", Msg: fmt.Sprintf("connect to check the schema: %v", err)}
		}
		defer conn.Close(context.WithoutCancel(ctx))
		var tables []string
		for _, p := range cfg.Pipelines {
			if _, inbound := cfg.Systems[p.From]; inbound {
				tables = append(tables, p.To)
			} else {
				tables = append(tables, p.From)
			}
			for _, l := range p.Lookups {
				tables = append(tables, l.Table)
			}
		}
		s, err := loadSchema(ctx, conn, tables)
		if err != nil {
			return config.FieldError{Path: "postgres.url", Msg: err.Error()}
		}
		var errs []error
		for i, p := range cfg.Pipelines {
			_, inbound := cfg.Systems[p.From]
			fes := s.check(p, !inbound)
			if inbound {
				fes = s.checkTarget(p)
			}
			for _, fe := range fes {
				errs = append(errs, config.FieldError{Path: pipelinePath(i, fe.Path), Msg: fe.Msg})
			}
		}
		return errors.Join(errs...)
	}
}

// check returns the missing tables and columns of one pipeline, with
// paths relative to it.
func (s schema) check(p *config.Pipeline, fromTable bool) []config.FieldError {
	var out []config.FieldError
	missing := func(path, table, col string) {
		msg := fmt.Sprintf("unknown column %q in %s%s", col, table, config.Suggest(col, s.columns[table]))
		out = append(out, config.FieldError{Path: path, Msg: msg})
	}
	var names []string
	for i, l := range p.Lookups {
		names = append(names, l.Name)
		lpath := fmt.Sprintf("lookups[%d]", i)
		if !s.exists(l.Table) {
			out = append(out, config.FieldError{Path: lpath + ".table", Msg: fmt.Sprintf("table %s does not exist", l.Table)})
			continue
		}
		for _, col := range sortedKeys(l.Key) {
			if !s.has(l.Table, col) {
				missing(lpath+".key."+col, l.Table, col)
			}
		}
		for j, col := range l.Columns {
			if !s.has(l.Table, col) {
				missing(fmt.Sprintf("%s.columns[%d]", lpath, j), l.Table, col)
			}
		}
	}
	if !fromTable {
		return out
	}
	table := p.From
	if !s.exists(table) {
		return append(out, config.FieldError{Path: "from", Msg: fmt.Sprintf("table %s does not exist", table)})
	}
	exprCols := func(path, src string) {
		prog, err := compileExpr(src, names, config.Columns{})
		if err != nil {
			return
		}
		for _, col := range slices.Concat(prog.after, prog.before, prog.key) {
			if !s.has(table, col) {
				missing(path, table, col)
			}
		}
	}
	for _, target := range sortedKeys(p.Map) {
		src := p.Map[target]
		switch {
		case src.Expr != "":
			exprCols("map."+target, src.Expr)
		case !src.IsConst && !s.has(table, src.Column):
			missing("map."+target, table, src.Column)
		}
	}
	if p.Filter != "" {
		exprCols("filter", p.Filter)
	}
	for i, l := range p.Lookups {
		for _, col := range sortedKeys(l.Key) {
			exprCols(fmt.Sprintf("lookups[%d].key.%s", i, col), l.Key[col])
		}
	}
	for key, list := range map[string][]string{"allow": p.Columns.Allow, "deny": p.Columns.Deny} {
		for i, col := range list {
			if !s.has(table, col) {
				missing(fmt.Sprintf("columns.%s[%d]", key, i), table, col)
			}
		}
	}
	if p.Link != nil && !s.has(table, p.Link.Column) {
		missing("link.column", table, p.Link.Column)
	}
	return out
}

// checkTarget returns what the inbound pipeline p would fail on in its
// table: a missing table, primary key or column, or match columns without
// a unique index for the upsert's ON CONFLICT. The lookups are checked as
// check does.
func (s schema) checkTarget(p *config.Pipeline) []config.FieldError {
	out := s.check(p, false)
	table := p.To
	if !s.exists(table) {
		return append(out, config.FieldError{Path: "to", Msg: fmt.Sprintf("table %s does not exist", table)})
	}
	if !s.primary[table] {
		out = append(out, config.FieldError{Path: "to", Msg: fmt.Sprintf("table %s has no primary key; cdcd links its rows to the system's records by it (ALTER TABLE ... ADD PRIMARY KEY)", table)})
	}
	missing := func(path, col string) {
		msg := fmt.Sprintf("unknown column %q in %s%s", col, table, config.Suggest(col, s.columns[table]))
		out = append(out, config.FieldError{Path: path, Msg: msg})
	}
	for _, col := range sortedKeys(p.Map) {
		if !s.has(table, col) {
			missing("map."+col, col)
		}
	}
	known := true
	for i, col := range p.Match {
		if !s.has(table, col) {
			missing(fmt.Sprintf("match[%d]", i), col)
			known = false
		}
	}
	if known && len(p.Match) > 0 && !s.uniqueOn(table, p.Match) {
		out = append(out, config.FieldError{Path: "match", Msg: fmt.Sprintf("no unique index or constraint of %s is on exactly %s; the upsert needs one (CREATE UNIQUE INDEX ON %s (...))",
			table, strings.Join(p.Match, ", "), table)})
	}
	if p.OnDelete == "soft" && !s.has(table, p.SoftDeleteColumn) {
		missing("soft_delete_column", p.SoftDeleteColumn)
	}
	return out
}

func pipelinePath(i int, rel string) string {
	if rel == "" {
		return fmt.Sprintf("pipelines[%d]", i)
	}
	return fmt.Sprintf("pipelines[%d].%s", i, rel)
}
