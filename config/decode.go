package config

import (
	"encoding"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"
)

// Decoding rules, shared by cdcd's own sections and every plugin's Config:
//
//   - A struct field is named by its yaml tag (`yaml:"name"`; `yaml:"-"`
//     skips it; an embedded struct tagged `yaml:",inline"` contributes its
//     fields). Every key in the file must name a field.
//   - Absent and null values leave the field as it was, so defaults are set
//     before decoding. A pointer to a struct is allocated when its key is
//     present; if it has a SetDefaults() method, that runs first.
//   - Strings accept any scalar as written. Integers, floats and booleans
//     need the matching YAML scalar, or a string made by ${VAR}
//     interpolation. A time.Duration is a string such as "10s" or "500ms",
//     or 0. A field whose pointer implements encoding.TextUnmarshaler gets
//     the scalar's text.
//   - Slices are replaced, not appended to; maps need string keys.
//   - ${VAR} interpolation applies to string scalars, never to keys.

const maxDepth = 32

var durationType = reflect.TypeFor[time.Duration]()

// nodeDecoder is implemented by types that decode themselves from the AST.
type nodeDecoder interface {
	decodeNode(d *decoder, n ast.Node, path string)
}

type position struct{ line, col int }

type decoder struct {
	file    string
	lookup  func(string) (string, bool)
	reg     *Registry
	anchors map[string][]*ast.AnchorNode
	pos     map[string]position // where each decoded path is written
	bad     map[string]bool     // paths with a decoding problem
	probs   []Problem
}

func newDecoder(file string, reg *Registry, lookup func(string) (string, bool)) *decoder {
	return &decoder{
		file:    file,
		lookup:  lookup,
		reg:     reg,
		anchors: map[string][]*ast.AnchorNode{},
		pos:     map[string]position{"": {1, 1}},
		bad:     map[string]bool{},
	}
}

func (d *decoder) problem(n ast.Node, path, msg string) {
	d.problemAt(nodePos(n), path, msg)
}

func (d *decoder) problemAt(p position, path, msg string) {
	d.probs = append(d.probs, Problem{File: d.file, Line: p.line, Col: p.col, Path: path, Msg: msg})
	d.bad[path] = true
}

func (d *decoder) record(path string, n ast.Node) {
	if _, ok := d.pos[path]; !ok {
		d.pos[path] = nodePos(n)
	}
}

// locate returns the position of path, or of its nearest recorded ancestor.
func (d *decoder) locate(path string) position {
	for {
		if p, ok := d.pos[path]; ok {
			return p
		}
		path = parentPath(path)
	}
}

// badAncestry reports whether path or one of its ancestors failed to decode.
func (d *decoder) badAncestry(path string) bool {
	for {
		if d.bad[path] {
			return true
		}
		if path == "" {
			return false
		}
		path = parentPath(path)
	}
}

// value decodes n into v, reporting every problem under path.
func (d *decoder) value(n ast.Node, v reflect.Value, path string, depth int) {
	if depth > maxDepth {
		d.problem(n, path, "nested too deeply")
		return
	}
	n, ok := d.resolve(n, path)
	if !ok || isNull(n) {
		return
	}
	if v.CanAddr() {
		switch u := v.Addr().Interface().(type) {
		case nodeDecoder:
			u.decodeNode(d, n, path)
			return
		case encoding.TextUnmarshaler:
			if s, ok := d.scalar(n, path, "a string"); ok {
				if err := u.UnmarshalText([]byte(s.text)); err != nil {
					d.problem(n, path, fmt.Sprintf("%s is not valid: %v", s.describe(), err))
				}
			}
			return
		}
	}
	if v.Type() == durationType {
		d.duration(n, v, path)
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(newWithDefaults(v.Type().Elem()))
		}
		d.value(n, v.Elem(), path, depth+1)
	case reflect.Struct:
		if es, ok := d.entries(n, path, 0); ok {
			d.fields(es, v, path, depth)
		}
	case reflect.Map:
		d.mapping(n, v, path, depth)
	case reflect.Slice:
		d.sequence(n, v, path, depth)
	case reflect.String:
		if s, ok := d.scalar(n, path, "a string"); ok {
			v.SetString(s.text)
		}
	case reflect.Bool:
		d.boolean(n, v, path)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		d.integer(n, v, path)
	case reflect.Float32, reflect.Float64:
		d.float(n, v, path)
	default:
		panic(fmt.Sprintf("config: cannot decode %s into %s", path, v.Type()))
	}
}

func newWithDefaults(t reflect.Type) reflect.Value {
	p := reflect.New(t)
	if sd, ok := p.Interface().(interface{ SetDefaults() }); ok {
		sd.SetDefaults()
	}
	return p
}

// fields decodes mapping entries into the fields of struct v.
func (d *decoder) fields(es []entry, v reflect.Value, path string, depth int) {
	idx := structFields(v.Type())
	for _, e := range es {
		p := joinPath(path, e.key)
		f, ok := idx[e.key]
		if !ok {
			names := make([]string, 0, len(idx))
			for name := range idx {
				names = append(names, name)
			}
			d.problem(e.keyNode, p, "unknown key"+suggest(e.key, names))
			continue
		}
		d.record(p, e.keyNode)
		d.value(e.value, v.FieldByIndex(f), p, depth+1)
	}
}

// structFields maps yaml key names to field indexes.
func structFields(t reflect.Type) map[string][]int {
	out := map[string][]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && opts == "inline" && f.Type.Kind() == reflect.Struct {
			for k, sub := range structFields(f.Type) {
				out[k] = append([]int{i}, sub...)
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = []int{i}
	}
	return out
}

func (d *decoder) mapping(n ast.Node, v reflect.Value, path string, depth int) {
	if v.Type().Key().Kind() != reflect.String {
		panic(fmt.Sprintf("config: map keys of %s must be strings", v.Type()))
	}
	es, ok := d.entries(n, path, 0)
	if !ok {
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMapWithSize(v.Type(), len(es)))
	}
	for _, e := range es {
		p := joinPath(path, e.key)
		d.record(p, e.keyNode)
		key := reflect.ValueOf(e.key).Convert(v.Type().Key())
		ev := reflect.New(v.Type().Elem()).Elem()
		if old := v.MapIndex(key); old.IsValid() {
			ev.Set(old)
		}
		d.value(e.value, ev, p, depth+1)
		fillNil(ev)
		v.SetMapIndex(key, ev)
	}
}

func (d *decoder) sequence(n ast.Node, v reflect.Value, path string, depth int) {
	seq, ok := n.(*ast.SequenceNode)
	if !ok {
		d.problem(n, path, "expected a list, got "+kindOf(n))
		return
	}
	out := reflect.MakeSlice(v.Type(), len(seq.Values), len(seq.Values))
	for i, item := range seq.Values {
		p := fmt.Sprintf("%s[%d]", path, i)
		d.record(p, item)
		d.value(item, out.Index(i), p, depth+1)
		fillNil(out.Index(i))
	}
	v.Set(out)
}

// fillNil allocates a nil pointer element left by a null value, so that
// maps and lists of pointers never hold nil.
func fillNil(v reflect.Value) {
	if v.Kind() == reflect.Pointer && v.IsNil() {
		v.Set(newWithDefaults(v.Type().Elem()))
	}
}
