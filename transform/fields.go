package transform

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/config"
)

// mapFields builds the record's fields. Column sources read after, or
// before for a delete. A source column absent from the row (an unchanged
// TOASTed value, or a column a delete's before lacks) leaves its target
// absent, and so does an expression that names an unchanged column or,
// in a partial change (a vendor's one changed property), a column the
// change does not carry.
func (m *Mapper) mapFields(st *state, e *cdc.Event) (map[string]any, error) {
	row := e.After
	if row == nil {
		row = e.Before
	}
	vt := &st.text
	if len(m.fields) == 0 {
		n := 0
		for i := range row {
			if m.cols.Visible(row[i].Name) {
				vt.add(row[i].Value)
				n++
			}
		}
		vt.seal()
		fields := make(map[string]any, n)
		for i := range row {
			if !m.cols.Visible(row[i].Name) {
				continue
			}
			v, err := vt.decode(row[i].Value)
			if err != nil {
				return nil, fmt.Errorf("column %s: %w", row[i].Name, err)
			}
			fields[row[i].Name] = v
		}
		return fields, nil
	}
	// The column sources' values, found in the row once: its index, or -1.
	st.cols = st.cols[:0]
	for i := range m.fields {
		if t := &m.fields[i]; !t.src.IsConst && t.prog == nil {
			at := slices.IndexFunc(row, func(f cdc.Field) bool { return f.Name == t.src.Column })
			if at >= 0 {
				vt.add(row[at].Value)
			}
			st.cols = append(st.cols, at)
		}
	}
	vt.seal()
	cols := st.cols
	fields := make(map[string]any, len(m.fields))
	for i := range m.fields {
		t := &m.fields[i]
		var v any
		switch {
		case t.src.IsConst:
			v = t.src.Const
		case t.prog != nil:
			if touchesUnchanged(t.prog, e.Unchanged) || e.Partial && !hasAll(row, t.prog.after) {
				continue
			}
			out, err := st.vm.Run(t.prog.prog, &st.env)
			if err != nil {
				return nil, fmt.Errorf("map.%s: %w", t.name, runError(err))
			}
			if v, err = fieldValue(out); err != nil {
				return nil, fmt.Errorf("map.%s: %w", t.name, err)
			}
		default:
			at := cols[0]
			cols = cols[1:]
			if at < 0 {
				continue
			}
			var err error
			if v, err = vt.decode(row[at].Value); err != nil {
				return nil, fmt.Errorf("map.%s: column %s: %w", t.name, t.src.Column, err)
			}
		}
		setPath(fields, t.path, v)
	}
	return fields, nil
}

func touchesUnchanged(p *program, unchanged []string) bool {
	for _, c := range unchanged {
		if slices.Contains(p.after, c) {
			return true
		}
	}
	return false
}

// setPath sets fields[a][b]...[z] = v, creating the nested maps.
func setPath(fields map[string]any, path []string, v any) {
	for _, p := range path[:len(path)-1] {
		next, ok := fields[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			fields[p] = next
		}
		fields = next
	}
	fields[path[len(path)-1]] = v
}

// fieldErrors flattens joined errors into FieldErrors; other errors get an
// empty path.
func fieldErrors(err error) []config.FieldError {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []config.FieldError
		for _, e := range j.Unwrap() {
			out = append(out, fieldErrors(e)...)
		}
		return out
	}
	var fe config.FieldError
	if errors.As(err, &fe) {
		return []config.FieldError{fe}
	}
	return []config.FieldError{{Msg: err.Error()}}
}

func joinErrors(errs []error) error { return errors.Join(errs...) }

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// hasAll reports whether row has every named column.
func hasAll(row cdc.Row, names []string) bool {
	for _, n := range names {
		if _, ok := row.Get(n); !ok {
			return false
		}
	}
	return true
}
