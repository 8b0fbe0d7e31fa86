package transform

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/expr-lang/expr/vm"
	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/syncapi"
)

// Spec is what a Mapper is built from: the mapping keys of a pipeline.
type Spec struct {
	// Object is the record's object type; empty means the event's table.
	Object  string
	Map     map[string]config.Source
	Ops     []string // empty means create, update and delete
	Filter  string
	Columns config.Columns
	Lookups []*config.Lookup
}

// SpecOf returns the Spec of a loaded pipeline.
func SpecOf(p *config.Pipeline) Spec {
	return Spec{Object: p.Object, Map: p.Map, Ops: p.Ops, Filter: p.Filter, Columns: p.Columns, Lookups: p.Lookups}
}

// Mapper maps the events of one pipeline to records. It is safe for
// concurrent use.
type Mapper struct {
	object  string
	ops     [3]bool // create, update, delete
	filter  *program
	fields  []target
	cols    config.Columns
	lookups []*lookup
	src     LookupSource
	// lookupFirst is set when the filter reads lookup results.
	lookupFirst bool
	needEnv     bool
	// envCols, unless nil, are the only row columns expressions read.
	envCols []string
	log     zerolog.Logger
	pool    sync.Pool // *state
}

// target is one mapped field.
type target struct {
	name string   // as written: account.name
	path []string // split at dots
	src  config.Source
	prog *program // for expression sources
}

// state is the per-call scratch space, reused between events.
type state struct {
	env     env
	vm      vm.VM
	key     map[string]any
	before  map[string]any
	after   map[string]any
	lookup  map[string]map[string]any
	keyVals []any
	buf     []byte
	text    valueText // the record's values' text
	cols    []int     // the column sources' places in the row
}

// New compiles spec. Every problem is returned at once, joined, as
// config.FieldErrors whose paths are relative to the pipeline ("filter",
// "map.firstname", "lookups[0].key.id"). lookups may be nil when spec has
// no lookups.
func New(spec Spec, lookups LookupSource, log zerolog.Logger) (*Mapper, error) {
	m := &Mapper{object: spec.Object, cols: spec.Columns, src: lookups, log: log}
	var errs []error
	fail := func(path string, err error) {
		errs = append(errs, config.FieldError{Path: path, Msg: err.Error()})
	}
	ops := spec.Ops
	if len(ops) == 0 {
		ops = []string{config.OpCreate, config.OpUpdate, config.OpDelete}
	}
	for i, op := range ops {
		switch op {
		case config.OpCreate:
			m.ops[0] = true
		case config.OpUpdate:
			m.ops[1] = true
		case config.OpDelete:
			m.ops[2] = true
		default:
			fail(fmt.Sprintf("ops[%d]", i), fmt.Errorf("%q is not one of create, update, delete", op))
		}
	}

	var names []string
	for i, l := range spec.Lookups {
		lk, err := compileLookup(l, spec.Columns)
		for _, fe := range fieldErrors(err) {
			fail(fmt.Sprintf("lookups[%d].%s", i, fe.Path), errors.New(fe.Msg))
		}
		m.lookups = append(m.lookups, lk)
		names = append(names, l.Name)
	}
	if len(spec.Lookups) > 0 && lookups == nil {
		fail("lookups", errors.New("lookups need a database connection"))
	}

	if spec.Filter != "" {
		p, err := compileExpr(spec.Filter, names, spec.Columns)
		if err == nil {
			if t := p.prog.Node().Type(); static(t) && t.Kind() != reflect.Bool {
				err = fmt.Errorf("must be a boolean expression, not %s", t)
			}
		}
		if err != nil {
			fail("filter", err)
		} else {
			m.filter, m.lookupFirst = p, p.usesLookup
		}
	}

	m.fields = make([]target, 0, len(spec.Map))
	for _, name := range slices.Sorted(maps.Keys(spec.Map)) {
		t := target{name: name, path: strings.Split(name, "."), src: spec.Map[name]}
		path := "map." + name
		switch {
		case slices.Contains(t.path, ""):
			fail(path, fmt.Errorf("%q is not a field path (names joined by single dots)", name))
			continue
		case t.src.IsConst:
		case t.src.Expr != "":
			p, err := compileExpr(t.src.Expr, names, spec.Columns)
			if err != nil {
				fail(path, err)
				continue
			}
			t.prog = p
		case t.src.Column == "":
			fail(path, errors.New(`required: a column name, {const: value} or {expr: "..."}`))
			continue
		case !spec.Columns.Visible(t.src.Column):
			fail(path, fmt.Errorf("column %q is hidden by columns.allow or columns.deny", t.src.Column))
			continue
		}
		m.fields = append(m.fields, t)
	}
	for i, a := range m.fields {
		for _, b := range m.fields[i+1:] {
			if strings.HasPrefix(b.name, a.name+".") {
				fail("map."+b.name, fmt.Errorf("conflicts with map.%s: a field cannot be both a value and an object", a.name))
			}
		}
	}

	var progs []*program
	if m.filter != nil {
		progs = append(progs, m.filter)
	}
	for _, lk := range m.lookups {
		progs = append(progs, lk.keyExpr...)
	}
	for _, t := range m.fields {
		if t.prog != nil {
			progs = append(progs, t.prog)
		}
	}
	m.needEnv = len(progs) > 0
	m.envCols = []string{}
	for _, p := range progs {
		if p.dynamic {
			m.envCols = nil
			break
		}
		for _, c := range slices.Concat(p.after, p.before, p.key) {
			if !slices.Contains(m.envCols, c) {
				m.envCols = append(m.envCols, c)
			}
		}
	}
	m.pool.New = func() any {
		return &state{key: map[string]any{}, before: map[string]any{}, after: map[string]any{}, lookup: map[string]map[string]any{}}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return m, nil
}

// Map maps e to the pipeline's record. ok is false when the change is not
// delivered: its op is not selected, the filter is not true, or it is a
// truncate. An error that evaluating the mapping again cannot fix is
// cdc.Permanent; lookup errors are transient.
func (m *Mapper) Map(ctx context.Context, e *cdc.Event) (syncapi.Record, bool, error) {
	st := m.pool.Get().(*state)
	defer m.release(st)
	op, ok, err := m.selects(ctx, st, e)
	if err != nil || !ok {
		return syncapi.Record{}, false, err
	}
	fields, err := m.mapFields(st, e)
	if err != nil {
		return syncapi.Record{}, false, permanent(err)
	}
	st.buf = cdc.AppendKey(st.buf[:0], e)
	object := m.object
	if object == "" {
		object = e.Table
	}
	return syncapi.Record{Event: e, Op: op, Object: object, Key: string(st.buf), Fields: fields}, true, nil
}

// Selects reports whether the pipeline takes e (its ops, lookups and
// filter), as Map does, without mapping its fields: what writers that
// take events as they are (file, stdout) need.
func (m *Mapper) Selects(ctx context.Context, e *cdc.Event) (bool, error) {
	st := m.pool.Get().(*state)
	defer m.release(st)
	_, ok, err := m.selects(ctx, st, e)
	return ok, err
}

// selects runs the ops, lookups and filter of the pipeline over e in st
// and returns the record's op.
func (m *Mapper) selects(ctx context.Context, st *state, e *cdc.Event) (cdc.Op, bool, error) {
	op, name, ok := m.op(e.Op)
	if !ok {
		return 0, false, nil
	}
	if m.needEnv {
		if err := m.fillEnv(st, e, name); err != nil {
			return 0, false, permanent(err)
		}
	}
	if !m.lookupFirst {
		if pass, err := m.pass(st); err != nil || !pass {
			return 0, false, err
		}
	}
	for _, lk := range m.lookups {
		row, err := lk.fetch(ctx, m.src, st)
		if err != nil {
			return 0, false, err
		}
		st.lookup[lk.name] = row
	}
	if m.lookupFirst {
		if pass, err := m.pass(st); err != nil || !pass {
			return 0, false, err
		}
	}
	return op, true, nil
}

// op maps a change to the record's op and its name in expressions.
func (m *Mapper) op(o cdc.Op) (cdc.Op, string, bool) {
	switch o {
	case cdc.OpCreate, cdc.OpRead:
		return cdc.OpCreate, config.OpCreate, m.ops[0]
	case cdc.OpUpdate:
		return cdc.OpUpdate, config.OpUpdate, m.ops[1]
	case cdc.OpDelete:
		return cdc.OpDelete, config.OpDelete, m.ops[2]
	}
	return 0, "", false
}

func (m *Mapper) fillEnv(st *state, e *cdc.Event, op string) error {
	st.env = env{Op: op, Table: e.Schema + "." + e.Table, Lookup: st.lookup}
	if e.Key != nil {
		if err := rowMap(st.key, e.Key, m.read, &st.text); err != nil {
			return fmt.Errorf("key: %w", err)
		}
		st.env.Key = st.key
	}
	if e.Before != nil {
		if err := rowMap(st.before, e.Before, m.visibleRead, &st.text); err != nil {
			return fmt.Errorf("before: %w", err)
		}
		st.env.Before = st.before
	}
	if e.After != nil {
		if err := rowMap(st.after, e.After, m.visibleRead, &st.text); err != nil {
			return fmt.Errorf("after: %w", err)
		}
		st.env.After = st.after
	}
	return nil
}

// read reports whether an expression may read the column.
func (m *Mapper) read(col string) bool {
	return m.envCols == nil || slices.Contains(m.envCols, col)
}

func (m *Mapper) visibleRead(col string) bool { return m.read(col) && m.cols.Visible(col) }

// pass evaluates the filter: nil counts as false, as SQL's WHERE does.
func (m *Mapper) pass(st *state) (bool, error) {
	if m.filter == nil {
		return true, nil
	}
	v, err := st.vm.Run(m.filter.prog, &st.env)
	if err != nil {
		return false, permanent(fmt.Errorf("filter: %w", runError(err)))
	}
	switch b := v.(type) {
	case bool:
		return b, nil
	case nil:
		return false, nil
	}
	return false, permanent(fmt.Errorf("filter: result is %T, not a boolean", v))
}

func (m *Mapper) release(st *state) {
	clear(st.key)
	clear(st.before)
	clear(st.after)
	clear(st.lookup)
	clear(st.keyVals)
	st.env = env{}
	st.text.text = "" // held by the record's fields, not by the pool
	m.pool.Put(st)
}

func permanent(err error) error {
	if err == nil || cdc.IsPermanent(err) {
		return err
	}
	return cdc.Permanent(err)
}

// Reads returns the row columns the mapping reads: column sources and the
// columns expressions name. Nil means every column (no map, or an
// expression that reads the row other than by static names).
func (m *Mapper) Reads() []string {
	if len(m.fields) == 0 {
		return nil
	}
	var cols []string
	for i := range m.fields {
		t := &m.fields[i]
		switch {
		case t.src.IsConst:
		case t.prog != nil:
			if t.prog.dynamic {
				return nil
			}
			cols = append(cols, t.prog.after...)
		default:
			cols = append(cols, t.src.Column)
		}
	}
	slices.Sort(cols)
	return slices.Compact(cols)
}
