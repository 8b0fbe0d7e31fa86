package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"

	"github.com/cdcd-dev/cdcd/syncapi"
)

// view is what URL and body templates see.
type view struct {
	Op         string // "create", "update" or "delete"
	Object     string
	Key        string
	ExternalID string
	EventID    string
	Fields     map[string]any
}

// newView is what a template sees of r; EventID is left empty unless
// eventID, since only templates and the idempotency header use it.
func newView(op string, r *syncapi.Record, eventID bool) view {
	v := view{Op: op, Object: r.Object, Key: r.Key, ExternalID: r.ExternalID, Fields: r.Fields}
	if r.Event != nil && eventID {
		v.EventID = r.Event.ID()
	}
	if v.Fields == nil {
		v.Fields = map[string]any{}
	}
	return v
}

// Escapers a URL action may end in; any other action gets "path" appended.
var escapers = map[string]bool{"path": true, "query": true, "raw": true}

var funcs = template.FuncMap{
	"path": func(v any) (string, error) {
		s, err := format(v)
		if err == nil && s == "" {
			err = errors.New("empty value in a URL path")
		}
		return url.PathEscape(s), err
	},
	"query": func(v any) (string, error) {
		s, err := format(v)
		return url.QueryEscape(s), err
	},
	"raw": format,
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
}

// parseURLTemplate parses a URL template and makes every action that
// prints a value end in an escaper.
func parseURLTemplate(name, text string) (*template.Template, error) {
	t, err := template.New(name).Funcs(funcs).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, err
	}
	for _, tt := range t.Templates() {
		if tt.Tree != nil {
			escapeList(tt.Tree, tt.Tree.Root)
		}
	}
	return t, nil
}

func parseBodyTemplate(name, text string) (*template.Template, error) {
	return template.New(name).Funcs(funcs).Option("missingkey=error").Parse(text)
}

func escapeList(tree *parse.Tree, list *parse.ListNode) {
	if list == nil {
		return
	}
	for _, n := range list.Nodes {
		switch n := n.(type) {
		case *parse.ActionNode:
			escapeAction(tree, n)
		case *parse.IfNode:
			escapeList(tree, n.List)
			escapeList(tree, n.ElseList)
		case *parse.RangeNode:
			escapeList(tree, n.List)
			escapeList(tree, n.ElseList)
		case *parse.WithNode:
			escapeList(tree, n.List)
			escapeList(tree, n.ElseList)
		}
	}
}

func escapeAction(tree *parse.Tree, a *parse.ActionNode) {
	p := a.Pipe
	if len(p.Decl) > 0 || len(p.Cmds) == 0 {
		return // a declaration prints nothing
	}
	last := p.Cmds[len(p.Cmds)-1]
	if id, ok := last.Args[0].(*parse.IdentifierNode); ok && escapers[id.Ident] {
		return
	}
	ident := parse.NewIdentifier("path").SetTree(tree).SetPos(a.Pos)
	p.Cmds = append(p.Cmds, &parse.CommandNode{NodeType: parse.NodeCommand, Pos: a.Pos, Args: []parse.Node{ident}})
}

// format renders a JSON-decoded value as text: numbers in plain decimal,
// objects and arrays as JSON. A null is an error.
func format(v any) (string, error) {
	switch v := v.(type) {
	case nil:
		return "", errors.New("value is null")
	case string:
		return v, nil
	case json.Number:
		return v.String(), nil
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), nil
	case float32:
		return strconv.FormatFloat(float64(v), 'f', -1, 32), nil
	case bool:
		return strconv.FormatBool(v), nil
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return fmt.Sprint(v), nil
	case []any, map[string]any:
		b, err := json.Marshal(v)
		return string(b), err
	}
	return fmt.Sprint(v), nil
}

// textOf returns what t prints when it prints text and nothing else
// (comments aside): ok is false when t has an action.
func textOf(t *template.Template) (text string, ok bool) {
	if len(t.Templates()) != 1 || t.Tree == nil || t.Tree.Root == nil {
		return "", false
	}
	var b strings.Builder
	for _, n := range t.Tree.Root.Nodes {
		tn, ok := n.(*parse.TextNode)
		if !ok {
			return "", false
		}
		b.Write(tn.Text)
	}
	return b.String(), true
}

// render executes t over v.
func render(t *template.Template, v view) ([]byte, error) {
	var b bytes.Buffer
	if err := t.Execute(&b, v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
