package config

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/goccy/go-yaml/ast"
)

// decodeNode decodes a map source: a column name, {const: v} or
// {expr: "..."}.
func (s *Source) decodeNode(d *decoder, n ast.Node, path string) {
	const want = `a column name, {const: value} or {expr: "..."}`
	if isScalar(n) {
		sc, ok := d.scalar(n, path, want)
		if !ok {
			return
		}
		if !sc.str {
			d.problem(n, path, fmt.Sprintf("expected %s, got %s (write {const: %s} for a constant)", want, kindOf(n), sc.text))
			return
		}
		*s = Source{Column: sc.text}
		return
	}
	es, ok := d.entries(n, path, 0)
	if !ok {
		return
	}
	if len(es) != 1 || (es[0].key != "const" && es[0].key != "expr") {
		d.problem(n, path, "expected "+want+" with exactly one key")
		return
	}
	e := es[0]
	p := path + "." + e.key
	d.record(p, e.keyNode)
	v, ok := d.resolve(e.value, p)
	if !ok {
		return
	}
	if e.key == "expr" {
		if isNull(v) {
			d.problem(v, path, "expected an expression, got null")
			return
		}
		if sc, ok := d.scalar(v, path, "an expression (a string)"); ok {
			*s = Source{Expr: sc.text}
		}
		return
	}
	c, ok := d.constant(v, path)
	if ok {
		*s = Source{Const: c, IsConst: true}
	}
}

// constant decodes a scalar constant: a string, a json.Number, a bool or
// nil.
func (d *decoder) constant(n ast.Node, path string) (any, bool) {
	switch m := n.(type) {
	case nil, *ast.NullNode:
		return nil, true
	case *ast.BoolNode:
		return m.Value, true
	case *ast.IntegerNode:
		switch x := m.Value.(type) {
		case int64:
			return json.Number(strconv.FormatInt(x, 10)), true
		case uint64:
			return json.Number(strconv.FormatUint(x, 10)), true
		}
	case *ast.FloatNode:
		if !math.IsInf(m.Value, 0) && !math.IsNaN(m.Value) {
			return json.Number(strconv.FormatFloat(m.Value, 'g', -1, 64)), true
		}
	case *ast.StringNode, *ast.LiteralNode:
		sc, ok := d.scalar(n, path, "a constant")
		return sc.text, ok
	}
	d.problem(n, path, "a constant must be a string, a finite number, a boolean or null, not "+kindOf(n))
	return nil, false
}
