package transform

import (
	"errors"
	"fmt"
	"reflect"
	"slices"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"

	"github.com/cdcd-dev/cdcd/config"
)

// env is what an expression sees. Row maps hold the pipeline's visible
// columns; a nil map stands for a missing row (before of an insert, after
// of a delete) and reads as nil at any column.
type env struct {
	Op     string                    `expr:"op"`
	Table  string                    `expr:"table"`
	Key    map[string]any            `expr:"key"`
	Before map[string]any            `expr:"before"`
	After  map[string]any            `expr:"after"`
	Lookup map[string]map[string]any `expr:"lookup"`
}

// program is a compiled expression and what it refers to.
type program struct {
	prog *vm.Program
	// after, before and key are the columns the expression names
	// statically (after.x, after["x"]).
	after, before, key []string
	// dynamic is set when a row is used other than by a static column
	// name: indexed by a computed name, or used whole (json(after)).
	dynamic bool
	// usesRows and usesLookup say which parts of env it reads.
	usesRows, usesLookup bool
}

func compileOptions() []expr.Option {
	return append(functions(), expr.Env(env{}), expr.Patch(nilSafe{}))
}

// compileExpr compiles src. lookups are the names lookup.<name> may use;
// columns hidden by cols may not be named.
func compileExpr(src string, lookups []string, cols config.Columns) (*program, error) {
	// The checker misses some errors once a patch has rewritten the tree,
	// so the expression is checked as written first.
	if _, err := expr.Compile(src, append(functions(), expr.Env(env{}))...); err != nil {
		return nil, compileError(err)
	}
	prog, err := expr.Compile(src, compileOptions()...)
	if err != nil {
		return nil, compileError(err)
	}
	p := &program{prog: prog}
	w := &refWalker{p: p, lookups: lookups, cols: cols}
	node := prog.Node()
	ast.Walk(&node, w)
	if w.err != nil {
		return nil, w.err
	}
	p.dynamic = p.dynamic || w.rowIdents > w.rowMembers
	return p, nil
}

// compileError renders an expr error on one line, without its snippet.
func compileError(err error) error {
	var fe *file.Error
	if errors.As(err, &fe) {
		if fe.Line > 1 {
			return fmt.Errorf("does not compile: %s (line %d, column %d)", fe.Message, fe.Line, fe.Column+1)
		}
		return fmt.Errorf("does not compile: %s (column %d)", fe.Message, fe.Column+1)
	}
	return fmt.Errorf("does not compile: %v", err)
}

// runError renders an evaluation error on one line.
func runError(err error) error {
	var fe *file.Error
	if errors.As(err, &fe) {
		return errors.New(fe.Message)
	}
	return err
}

// refWalker collects the columns and lookups an expression names.
type refWalker struct {
	p       *program
	lookups []string
	cols    config.Columns
	err     error
	// rowIdents counts uses of after, before and key; rowMembers those
	// that are static column reads.
	rowIdents, rowMembers int
}

func (w *refWalker) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.IdentifierNode:
		switch n.Value {
		case "after", "before", "key":
			w.p.usesRows = true
			w.rowIdents++
		case "lookup":
			w.p.usesLookup = true
		}
	case *ast.MemberNode:
		id, ok := n.Node.(*ast.IdentifierNode)
		if !ok {
			return
		}
		prop, static := n.Property.(*ast.StringNode)
		if !static {
			return
		}
		switch id.Value {
		case "after", "before", "key":
			w.rowMembers++
		}
		switch id.Value {
		case "after":
			w.column(&w.p.after, prop.Value)
		case "before":
			w.column(&w.p.before, prop.Value)
		case "key":
			if !slices.Contains(w.p.key, prop.Value) {
				w.p.key = append(w.p.key, prop.Value)
			}
		case "lookup":
			if !slices.Contains(w.lookups, prop.Value) && w.err == nil {
				w.err = fmt.Errorf("unknown lookup %q%s", prop.Value, lookupHint(prop.Value, w.lookups))
			}
		}
	}
}

func (w *refWalker) column(list *[]string, name string) {
	if !w.cols.Visible(name) && w.err == nil {
		w.err = fmt.Errorf("column %q is hidden by columns.allow or columns.deny", name)
	}
	if !slices.Contains(*list, name) {
		*list = append(*list, name)
	}
}

func lookupHint(name string, lookups []string) string {
	if len(lookups) == 0 {
		return " (no lookups are available here)"
	}
	return config.Suggest(name, lookups)
}

// nilSafe rewrites ordering comparisons (<, <=, >, >=) whose operand types
// are not known when compiling into calls that are false when either side
// is nil.
type nilSafe struct{}

var orderings = map[string]string{"<": fnLess, "<=": fnLessEq, ">": fnMore, ">=": fnMoreEq}

func (nilSafe) Visit(node *ast.Node) {
	b, ok := (*node).(*ast.BinaryNode)
	if !ok {
		return
	}
	fn, ok := orderings[b.Operator]
	if !ok || (static(b.Left.Type()) && static(b.Right.Type())) {
		return
	}
	ast.Patch(node, &ast.CallNode{
		Callee:    &ast.IdentifierNode{Value: fn},
		Arguments: []ast.Node{b.Left, b.Right},
	})
}

func static(t reflect.Type) bool { return t != nil && t.Kind() != reflect.Interface }
