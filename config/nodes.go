package config

import "github.com/goccy/go-yaml/ast"

// nodePos is where a node starts; a mapping starts at its first key.
func nodePos(n ast.Node) position {
	switch m := n.(type) {
	case nil:
		return position{}
	case *ast.MappingNode:
		if len(m.Values) > 0 {
			return nodePos(m.Values[0])
		}
	case *ast.MappingValueNode:
		return nodePos(m.Key)
	}
	if tk := n.GetToken(); tk != nil && tk.Position != nil {
		return position{tk.Position.Line, tk.Position.Column}
	}
	return position{}
}

// anchorVisitor collects every anchor by name, in document order.
type anchorVisitor map[string][]*ast.AnchorNode

func (v anchorVisitor) Visit(n ast.Node) ast.Visitor {
	if a, ok := n.(*ast.AnchorNode); ok && a.Name != nil && a.Name.GetToken() != nil {
		name := a.Name.GetToken().Value
		v[name] = append(v[name], a)
	}
	return v
}

// resolve looks through anchors, tags and aliases to the node that holds
// the value. It returns false after reporting an alias to no anchor.
func (d *decoder) resolve(n ast.Node, path string) (ast.Node, bool) {
	for range maxDepth {
		switch m := n.(type) {
		case *ast.AnchorNode:
			n = m.Value
		case *ast.TagNode:
			n = m.Value
		case *ast.MappingKeyNode:
			n = m.Value
		case *ast.AliasNode:
			target := d.anchorFor(m)
			if target == nil {
				d.problem(m, path, "alias to an undefined anchor")
				return nil, false
			}
			n = target.Value
		default:
			return n, true
		}
	}
	d.problem(n, path, "aliases nested too deeply")
	return nil, false
}

// anchorFor returns the last anchor of the alias's name defined before it.
func (d *decoder) anchorFor(a *ast.AliasNode) *ast.AnchorNode {
	if a.Value == nil || a.Value.GetToken() == nil {
		return nil
	}
	at := a.GetToken().Position.Offset
	var found *ast.AnchorNode
	for _, an := range d.anchors[a.Value.GetToken().Value] {
		if an.GetToken().Position.Offset < at {
			found = an
		}
	}
	return found
}

func isNull(n ast.Node) bool {
	_, null := n.(*ast.NullNode)
	return n == nil || null
}

func kindOf(n ast.Node) string {
	switch n.(type) {
	case nil:
		return "null"
	case *ast.MappingNode, *ast.MappingValueNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	case *ast.StringNode, *ast.LiteralNode:
		return "a string"
	case *ast.IntegerNode:
		return "an integer"
	case *ast.FloatNode, *ast.InfinityNode, *ast.NanNode:
		return "a number"
	case *ast.BoolNode:
		return "a boolean"
	case *ast.NullNode:
		return "null"
	}
	return "a " + n.Type().YAMLName()
}

// entry is one key: value pair of a mapping.
type entry struct {
	key     string
	keyNode ast.Node
	value   ast.Node
}

// entries returns a mapping's pairs in file order, with the pairs of merge
// keys (<<: *anchor) after them, minus the keys already present.
func (d *decoder) entries(n ast.Node, path string, depth int) ([]entry, bool) {
	if depth > maxDepth {
		d.problem(n, path, "merge keys nested too deeply")
		return nil, false
	}
	var pairs []*ast.MappingValueNode
	switch m := n.(type) {
	case *ast.MappingNode:
		pairs = m.Values
	case *ast.MappingValueNode:
		pairs = []*ast.MappingValueNode{m}
	default:
		d.problem(n, path, "expected a mapping, got "+kindOf(n))
		return nil, false
	}
	var out, merged []entry
	seen := map[string]bool{}
	for _, p := range pairs {
		k, ok := d.resolve(p.Key, path)
		if !ok {
			continue
		}
		if _, merge := k.(*ast.MergeKeyNode); merge {
			merged = append(merged, d.mergeEntries(p.Value, path, depth)...)
			continue
		}
		if !isScalar(k) || isNull(k) {
			d.problem(k, path, "a key must be a string, not "+kindOf(k))
			continue
		}
		key := scalarText(k)
		seen[key] = true
		out = append(out, entry{key: key, keyNode: k, value: p.Value})
	}
	for _, e := range merged {
		if !seen[e.key] {
			seen[e.key] = true
			out = append(out, e)
		}
	}
	return out, true
}

func (d *decoder) mergeEntries(v ast.Node, path string, depth int) []entry {
	v, ok := d.resolve(v, path)
	if !ok {
		return nil
	}
	seq, isSeq := v.(*ast.SequenceNode)
	if !isSeq {
		es, _ := d.entries(v, path, depth+1)
		return es
	}
	var out []entry
	for _, item := range seq.Values {
		if item, ok := d.resolve(item, path); ok {
			es, _ := d.entries(item, path, depth+1)
			out = append(out, es...)
		}
	}
	return out
}

func isScalar(n ast.Node) bool {
	switch n.(type) {
	case *ast.MappingNode, *ast.MappingValueNode, *ast.SequenceNode:
		return false
	}
	return true
}

// scalarText is a scalar as written, without interpolation.
func scalarText(n ast.Node) string {
	switch m := n.(type) {
	case *ast.StringNode:
		return m.Value
	case *ast.LiteralNode:
		if m.Value != nil {
			return m.Value.Value
		}
		return ""
	}
	if tk := n.GetToken(); tk != nil {
		return tk.Value
	}
	return ""
}
