package transform

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/hashicorp/golang-lru/v2/expirable"

	"github.com/cdcd-dev/cdcd/config"
)

// LookupSource reads one row of a table: the first row whose columns equal
// key (column → value), restricted to columns. A missing row is a nil map
// and a nil error. Values are those of the change encoding decoded with
// UseNumber (see cdc.Field). Errors are transient: the change is retried.
// It is called concurrently.
type LookupSource interface {
	Lookup(ctx context.Context, table string, key map[string]any, columns []string) (map[string]any, error)
}

// lookup is one compiled lookup with its cache of found rows.
type lookup struct {
	name    string
	table   string
	columns []string
	keyCols []string
	keyExpr []*program
	cache   *expirable.LRU[string, map[string]any] // nil when disabled
}

func compileLookup(l *config.Lookup, cols config.Columns) (*lookup, error) {
	lk := &lookup{name: l.Name, table: l.Table, columns: l.Columns}
	var errs []error
	for _, col := range sortedKeys(l.Key) {
		p, err := compileExpr(l.Key[col], nil, cols)
		if err == nil && p.usesLookup {
			err = fmt.Errorf("a lookup key cannot use lookup results")
		}
		if err != nil {
			errs = append(errs, config.FieldError{Path: "key." + col, Msg: err.Error()})
			continue
		}
		lk.keyCols = append(lk.keyCols, col)
		lk.keyExpr = append(lk.keyExpr, p)
	}
	if l.Cache.Size > 0 {
		lk.cache = expirable.NewLRU[string, map[string]any](l.Cache.Size, nil, l.Cache.TTL)
	}
	return lk, joinErrors(errs)
}

// fetch returns the lookup's row for the change in st.env. A key
// expression that yields nil matches no row, without a query. Found rows
// are cached; missing rows are not, so a row inserted later is seen at
// once.
func (lk *lookup) fetch(ctx context.Context, src LookupSource, st *state) (map[string]any, error) {
	key := make(map[string]any, len(lk.keyCols))
	vals := st.keyVals[:0]
	for i, p := range lk.keyExpr {
		v, err := st.vm.Run(p.prog, &st.env)
		if err != nil {
			return nil, permanent(fmt.Errorf("lookups.%s.key.%s: %w", lk.name, lk.keyCols[i], runError(err)))
		}
		if v == nil {
			return nil, nil
		}
		key[lk.keyCols[i]] = v
		vals = append(vals, v)
	}
	st.keyVals = vals
	var ck string
	if lk.cache != nil {
		b, err := json.Marshal(vals)
		if err != nil {
			return nil, permanent(fmt.Errorf("lookups.%s.key: %w", lk.name, err))
		}
		ck = string(b)
		if row, ok := lk.cache.Get(ck); ok {
			return row, nil
		}
	}
	row, err := src.Lookup(ctx, lk.table, key, lk.columns)
	if err != nil {
		return nil, fmt.Errorf("lookup %s in %s: %w", lk.name, lk.table, err)
	}
	if row == nil {
		return nil, nil
	}
	conv := exprValue(row).(map[string]any)
	if lk.cache != nil {
		lk.cache.Add(ck, conv)
	}
	return conv, nil
}
