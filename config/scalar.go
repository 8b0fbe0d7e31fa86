package config

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"
)

// scalar is a scalar value after interpolation.
type scalar struct {
	text string
	str  bool     // written as a YAML string
	vars []string // environment variables interpolated into it
}

// describe renders the value for an error message. A value that came from
// the environment is named by its variables, never printed.
func (s scalar) describe() string {
	switch {
	case len(s.vars) > 0:
		return "the value of ${" + strings.Join(s.vars, "}${") + "}"
	case s.str:
		return strconv.Quote(s.text)
	}
	return s.text
}

func (d *decoder) scalar(n ast.Node, path, want string) (scalar, bool) {
	if !isScalar(n) {
		d.problem(n, path, "expected "+want+", got "+kindOf(n))
		return scalar{}, false
	}
	switch n.(type) {
	case *ast.StringNode, *ast.LiteralNode:
	default:
		return scalar{text: scalarText(n)}, true
	}
	text, vars, probs := interpolate(scalarText(n), d.lookup)
	for _, msg := range probs {
		d.problem(n, path, msg)
	}
	return scalar{text: text, str: true, vars: vars}, len(probs) == 0
}

func (d *decoder) duration(n ast.Node, v reflect.Value, path string) {
	s, ok := d.scalar(n, path, "a duration")
	if !ok {
		return
	}
	if _, isInt := n.(*ast.IntegerNode); isInt {
		if s.text == "0" {
			v.SetInt(0)
			return
		}
		d.problem(n, path, fmt.Sprintf("%s is not a duration (add a unit, e.g. %ss)", s.text, s.text))
		return
	}
	dur, err := time.ParseDuration(s.text)
	if err != nil {
		d.problem(n, path, s.describe()+" is not a duration")
		return
	}
	v.SetInt(int64(dur))
}

func (d *decoder) boolean(n ast.Node, v reflect.Value, path string) {
	if b, ok := n.(*ast.BoolNode); ok {
		v.SetBool(b.Value)
		return
	}
	s, ok := d.scalar(n, path, "a boolean")
	if !ok {
		return
	}
	if len(s.vars) > 0 && (s.text == "true" || s.text == "false") {
		v.SetBool(s.text == "true")
		return
	}
	d.problem(n, path, s.describe()+" is not a boolean (true or false)")
}

func (d *decoder) integer(n ast.Node, v reflect.Value, path string) {
	s, ok := d.scalar(n, path, "an integer")
	if !ok {
		return
	}
	var (
		i        int64
		u        uint64
		negative bool
	)
	switch m := n.(type) {
	case *ast.IntegerNode:
		switch x := m.Value.(type) {
		case int64:
			i, negative = x, x < 0
			u = uint64(x)
		case uint64:
			u, i = x, math.MaxInt64
			if x <= math.MaxInt64 {
				i = int64(x)
			}
		}
	default:
		var err error
		if len(s.vars) == 0 {
			d.problem(n, path, s.describe()+" is not an integer")
			return
		}
		if i, err = strconv.ParseInt(s.text, 10, 64); err != nil {
			d.problem(n, path, s.describe()+" is not an integer")
			return
		}
		negative, u = i < 0, uint64(i)
	}
	switch v.Kind() {
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if negative || v.OverflowUint(u) {
			d.problem(n, path, s.describe()+" is out of range")
			return
		}
		v.SetUint(u)
	default:
		if (!negative && u > math.MaxInt64) || v.OverflowInt(i) {
			d.problem(n, path, s.describe()+" is out of range")
			return
		}
		v.SetInt(i)
	}
}

func (d *decoder) float(n ast.Node, v reflect.Value, path string) {
	s, ok := d.scalar(n, path, "a number")
	if !ok {
		return
	}
	switch m := n.(type) {
	case *ast.FloatNode:
		v.SetFloat(m.Value)
		return
	case *ast.InfinityNode:
		v.SetFloat(m.Value)
		return
	case *ast.NanNode:
		v.SetFloat(math.NaN())
		return
	case *ast.IntegerNode:
		switch x := m.Value.(type) {
		case int64:
			v.SetFloat(float64(x))
			return
		case uint64:
			v.SetFloat(float64(x))
			return
		}
	default:
		if f, err := strconv.ParseFloat(s.text, 64); err == nil && len(s.vars) > 0 {
			v.SetFloat(f)
			return
		}
	}
	d.problem(n, path, s.describe()+" is not a number")
}
