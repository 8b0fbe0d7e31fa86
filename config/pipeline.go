package config

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Pipeline moves events from a table or system to a system, mapping each
// change into a record of the system's object type.
type Pipeline struct {
	Name string `yaml:"name"`
	// From is a qualified table name ("schema.table") or, for inbound
	// events, a system name; a system name never contains a dot.
	From string `yaml:"from"`
	// To is a system name.
	To string `yaml:"to"`
	// Object is the system's object type (contacts, Contact, orders).
	// Empty means the source table's name without its schema.
	Object string `yaml:"object"`
	// Map names each field of the record (a dotted path for nested
	// objects) and where its value comes from. Empty means every column
	// that Columns lets through, as is.
	Map map[string]Source `yaml:"map"`
	// Ops are the kinds of change delivered: create, update, delete.
	Ops []string `yaml:"ops"`
	// Filter is an expression; only changes for which it is true are
	// delivered. Empty delivers every change.
	Filter  string  `yaml:"filter"`
	Columns Columns `yaml:"columns"`
	// Lookups enrich each change with a row of another table.
	Lookups []*Lookup `yaml:"lookups"`
	// Link, when set, names the local column that receives the record's
	// id in the system after it is created.
	Link *Link `yaml:"link"`
	// Coalesce lets a newer change of a record replace an older one that is
	// still waiting, so only the latest state is written.
	Coalesce bool `yaml:"coalesce"`
	// Concurrency is how many writes to the system may be in flight.
	Concurrency int `yaml:"concurrency"`
	// MaxAttempts bounds the tries of one record before it is dead-lettered.
	MaxAttempts int     `yaml:"max_attempts"`
	Backoff     Backoff `yaml:"backoff"`
	// MaxAge dead-letters a record still undelivered this long after its
	// first try; 0 means delivery's default, 24 hours.
	MaxAge time.Duration `yaml:"max_age"`
	// Snapshot "initial" makes cdcd backfill the pipeline once, at its first
	// start: a new pipeline starts with its table's rows. Pipelines from a
	// table only; empty or "never" means changes only.
	Snapshot string `yaml:"snapshot"`

	// Inbound pipelines (from a system, to a table) only:
	// Match names the local columns a record not linked yet is matched on
	// (they need a unique index).
	Match []string `yaml:"match"`
	// OnDelete is what a delete in the system does locally: delete, soft
	// (set SoftDeleteColumn to now()) or ignore.
	OnDelete         string `yaml:"on_delete"`
	SoftDeleteColumn string `yaml:"soft_delete_column"`
	// TombstoneTTL is how long a deleted record refuses late updates.
	TombstoneTTL time.Duration `yaml:"tombstone_ttl"`
	// Conflict decides fields changed on both sides since the last sync;
	// DefaultConflict when absent.
	Conflict *Conflict `yaml:"conflict"`
	// Line is where the pipeline is defined.
	Line int `yaml:"-"`
}

// Pipeline defaults.
const (
	DefaultConcurrency  = 4
	DefaultMaxAttempts  = 10
	DefaultBackoffMin   = time.Second
	DefaultBackoffMax   = 5 * time.Minute
	DefaultCacheSize    = 10_000
	DefaultCacheTTL     = 5 * time.Minute
	DefaultTombstoneTTL = 24 * time.Hour
)

// Ops a pipeline may select.
const (
	OpCreate = "create"
	OpUpdate = "update"
	OpDelete = "delete"
)

// SetDefaults sets every pipeline default.
func (p *Pipeline) SetDefaults() {
	*p = Pipeline{
		Ops:              []string{OpCreate, OpUpdate, OpDelete},
		Coalesce:         true,
		Concurrency:      DefaultConcurrency,
		MaxAttempts:      DefaultMaxAttempts,
		Backoff:          Backoff{Min: DefaultBackoffMin, Max: DefaultBackoffMax},
		OnDelete:         "delete",
		SoftDeleteColumn: "deleted_at",
		TombstoneTTL:     DefaultTombstoneTTL,
	}
}

// IsInbound reports whether p applies a system's changes to a table.
func (c *Config) IsInbound(p *Pipeline) bool {
	_, ok := c.Systems[p.From]
	return ok
}

// Source is where one mapped field's value comes from: exactly one of a
// column of the row, a constant, or an expression.
//
// In the file, a plain string is a column name, {const: value} a constant
// and {expr: "..."} an expression.
type Source struct {
	Column string
	// Const is the constant when IsConst: a string, a json.Number, a bool
	// or nil.
	Const   any
	IsConst bool
	Expr    string
}

// ColumnSource, ConstSource and ExprSource build Sources.
func ColumnSource(name string) Source { return Source{Column: name} }
func ConstSource(v any) Source        { return Source{Const: v, IsConst: true} }
func ExprSource(src string) Source    { return Source{Expr: src} }

// Columns restricts the columns a pipeline sees. Allow, when not empty,
// lets only the named columns through; Deny removes the named columns. At
// most one of them may be set. Key columns are always seen.
type Columns struct {
	Allow []string `yaml:"allow"`
	Deny  []string `yaml:"deny"`
}

// Visible reports whether a pipeline with these rules sees the column.
func (c Columns) Visible(name string) bool {
	if len(c.Allow) > 0 {
		return slices.Contains(c.Allow, name)
	}
	return !slices.Contains(c.Deny, name)
}

// Lookup reads one row of another table for each change: the row whose
// Key columns equal the values of the Key expressions. Expressions see its
// Columns as lookup.<Name>.<column>, or nil when no row matches.
type Lookup struct {
	Name string `yaml:"name"`
	// Table is "schema.table" after Load.
	Table string `yaml:"table"`
	// Key maps a column of Table to an expression over the change.
	Key     map[string]string `yaml:"key"`
	Columns []string          `yaml:"columns"`
	Cache   Cache             `yaml:"cache"`
}

// SetDefaults sets the cache defaults.
func (l *Lookup) SetDefaults() {
	*l = Lookup{Cache: Cache{Size: DefaultCacheSize, TTL: DefaultCacheTTL}}
}

// Cache bounds a lookup's cache of found rows. Size 0 disables caching;
// TTL 0 keeps entries until they are evicted by size.
type Cache struct {
	Size int           `yaml:"size"`
	TTL  time.Duration `yaml:"ttl"`
}

// Link names the local column that holds a record's external id.
type Link struct {
	Column string `yaml:"column"`
}

// Backoff bounds the delay between attempts: it starts at Min and doubles
// up to Max.
type Backoff struct {
	Min time.Duration `yaml:"min"`
	Max time.Duration `yaml:"max"`
}

var (
	// fieldName is a column or vendor field named by a map source.
	fieldName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$-]*$`)
	// lookupName is usable as lookup.<name> in expressions.
	lookupName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	opNames    = []string{OpCreate, OpUpdate, OpDelete}
)

// validate checks the mapping and delivery keys of a pipeline; fromTable
// says whether it reads a table.
func (p *Pipeline) validate(v *problems, path string, fromTable bool) {
	if len(p.Ops) == 0 {
		v.add(path+".ops", "must name at least one of create, update, delete")
	}
	for i, op := range p.Ops {
		opath := fmt.Sprintf("%s.ops[%d]", path, i)
		if slices.Contains(p.Ops[:i], op) {
			v.add(opath, fmt.Sprintf("duplicate op %q", op))
			continue
		}
		v.oneOf(opath, op, opNames)
	}
	for _, target := range slices.Sorted(maps.Keys(p.Map)) {
		tpath := path + ".map." + target
		if slices.Contains(strings.Split(target, "."), "") {
			v.add(tpath, fmt.Sprintf("%q is not a field path (names joined by single dots)", target))
		}
		p.Map[target].validate(v, tpath)
	}
	p.Columns.validate(v, path+".columns")
	names := map[string]int{}
	for i, l := range p.Lookups {
		lpath := fmt.Sprintf("%s.lookups[%d]", path, i)
		if first, dup := names[l.Name]; dup && l.Name != "" {
			v.add(lpath+".name", fmt.Sprintf("duplicate lookup name %q (also lookups[%d])", l.Name, first))
		} else {
			names[l.Name] = i
		}
		l.validate(v, lpath)
	}
	if p.Link != nil {
		switch {
		case !fromTable:
			v.add(path+".link", "only a pipeline from a table can link records (from names a system)")
		case p.Link.Column == "":
			v.add(path+".link.column", "required (the local column that holds the external id)")
		case !identifier.MatchString(p.Link.Column):
			v.add(path+".link.column", fmt.Sprintf("%q is not a column name", p.Link.Column))
		}
	}
	if p.Concurrency < 1 {
		v.add(path+".concurrency", "must be at least 1")
	}
	if p.MaxAttempts < 1 {
		v.add(path+".max_attempts", "must be at least 1")
	}
	if p.Backoff.Min <= 0 {
		v.add(path+".backoff.min", "must be more than 0")
	}
	if p.Backoff.Max < p.Backoff.Min {
		v.add(path+".backoff.max", fmt.Sprintf("%s is less than backoff.min (%s)", p.Backoff.Max, p.Backoff.Min))
	}
	if p.MaxAge < 0 {
		v.add(path+".max_age", "must not be negative (0 means 24 hours)")
	}
	v.oneOf(path+".snapshot", p.Snapshot, []string{"", "never", "initial"})
	if fromTable {
		if len(p.Match) > 0 {
			v.add(path+".match", "only a pipeline from a system to a table matches local rows")
		}
		if p.Conflict != nil {
			v.add(path+".conflict", "only a pipeline from a system to a table decides conflicts (set it on the pipeline that brings the system's changes in)")
		}
		return
	}
	if p.Snapshot == "initial" {
		v.add(path+".snapshot", "only a pipeline from a table starts with a snapshot of it; an import (cdcd import) fills a table from a system")
	}
	if len(p.Match) == 0 {
		v.add(path+".match", "required: the local column(s) a record not linked yet is matched on, e.g. [email] (they need a unique index)")
	}
	for i, c := range p.Match {
		if !identifier.MatchString(c) || slices.Contains(p.Match[:i], c) {
			v.add(fmt.Sprintf("%s.match[%d]", path, i), fmt.Sprintf("%q is not a column name, or repeats one", c))
		}
	}
	v.oneOf(path+".on_delete", p.OnDelete, []string{"delete", "soft", "ignore"})
	if p.OnDelete == "soft" && !identifier.MatchString(p.SoftDeleteColumn) {
		v.add(path+".soft_delete_column", fmt.Sprintf("%q is not a column name", p.SoftDeleteColumn))
	}
	if p.TombstoneTTL <= 0 {
		v.add(path+".tombstone_ttl", "must be more than 0")
	}
}

func (s Source) validate(v *problems, path string) {
	switch {
	case s.IsConst:
	case s.Expr != "":
	case s.Column == "":
		v.add(path, `required: a column name, {const: value} or {expr: "..."}`)
	case !fieldName.MatchString(s.Column):
		v.add(path, fmt.Sprintf("%q is not a column name; write {expr: \"...\"} for an expression or {const: ...} for a constant", s.Column))
	}
}

func (c Columns) validate(v *problems, path string) {
	if len(c.Allow) > 0 && len(c.Deny) > 0 {
		v.add(path, "set allow or deny, not both")
	}
	for key, list := range map[string][]string{"allow": c.Allow, "deny": c.Deny} {
		for i, col := range list {
			if !fieldName.MatchString(col) {
				v.add(fmt.Sprintf("%s.%s[%d]", path, key, i), fmt.Sprintf("%q is not a column name", col))
			}
		}
	}
}

func (l *Lookup) validate(v *problems, path string) {
	switch {
	case l.Name == "":
		v.add(path+".name", "required")
	case !lookupName.MatchString(l.Name):
		v.add(path+".name", fmt.Sprintf("%q is not a valid lookup name (a letter or _, then letters, digits or _)", l.Name))
	}
	if _, ok := qualify(l.Table); !ok {
		v.add(path+".table", fmt.Sprintf("%q is not a table name (schema.table or table)", l.Table))
	}
	if len(l.Key) == 0 {
		v.add(path+".key", "required (a mapping of key column to expression)")
	}
	for _, col := range slices.Sorted(maps.Keys(l.Key)) {
		kpath := path + ".key." + col
		switch {
		case !identifier.MatchString(col):
			v.add(kpath, fmt.Sprintf("%q is not a column name", col))
		case l.Key[col] == "":
			v.add(kpath, "required (an expression, e.g. after.customer_id)")
		}
	}
	if len(l.Columns) == 0 {
		v.add(path+".columns", "required (the columns to read)")
	}
	for i, col := range l.Columns {
		if !identifier.MatchString(col) {
			v.add(fmt.Sprintf("%s.columns[%d]", path, i), fmt.Sprintf("%q is not a column name", col))
		}
	}
	if l.Cache.Size < 0 {
		v.add(path+".cache.size", "must not be negative (0 disables the cache)")
	}
	if l.Cache.TTL < 0 {
		v.add(path+".cache.ttl", "must not be negative (0 keeps entries until evicted)")
	}
}
