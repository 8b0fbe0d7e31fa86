package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// Load reads, decodes and validates the config file at path, resolving
// system types in reg. It never connects to anything.
//
// A file that cannot be read yields a plain error. Any problem with its
// content yields an *Errors listing every problem found, each at its line
// and column.
func Load(path string, reg *Registry) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return load(path, data, reg, os.LookupEnv)
}

func load(file string, data []byte, reg *Registry, lookup func(string) (string, bool)) (*Config, error) {
	d := newDecoder(file, reg, lookup)
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		return nil, &Errors{Problems: []Problem{syntaxProblem(file, err)}}
	}
	var root ast.Node
	for _, doc := range f.Docs {
		switch {
		case doc == nil || doc.Body == nil:
		case root == nil:
			root = doc.Body
		default:
			d.problem(doc.Body, "", "a config file holds one YAML document; remove the ---")
		}
	}
	if root != nil {
		ast.Walk(anchorVisitor(d.anchors), root)
	}

	cfg := Default()
	d.value(root, reflect.ValueOf(cfg).Elem(), "", 0)
	for name, s := range cfg.Systems {
		s.Name = name
		s.Line = d.locate("systems." + name).line
	}
	for i, p := range cfg.Pipelines {
		p.Line = d.locate(fmt.Sprintf("pipelines[%d]", i)).line
	}
	cfg.qualifyTables()
	var resolved problems
	cfg.resolveRetention(func(path string) bool { _, ok := d.pos[path]; return ok }, &resolved)
	d.place(errors.Join(resolved...))

	d.place(cfg.Validate())
	d.place(reg.checkSinkPipelines(cfg))
	for _, check := range reg.checkers {
		d.place(check(cfg))
	}
	if len(d.probs) > 0 {
		errs := &Errors{Problems: d.probs}
		errs.sort()
		return nil, errs
	}
	return cfg, nil
}

// place reports the FieldErrors of err at the lines of their paths, except
// those under a path that already has a problem.
func (d *decoder) place(err error) {
	for _, fe := range fieldErrors("", err) {
		if d.badAncestry(fe.Path) {
			continue
		}
		d.problemAt(d.locate(fe.Path), fe.Path, fe.Msg)
	}
}

// syntaxProblem places a parser error. Only the parser's message is kept:
// its formatted form quotes the source.
func syntaxProblem(file string, err error) Problem {
	var ye yaml.Error
	if errors.As(err, &ye) {
		p := Problem{File: file, Msg: ye.GetMessage()}
		if tk := ye.GetToken(); tk != nil && tk.Position != nil {
			p.Line, p.Col = tk.Position.Line, tk.Position.Column
		}
		return p
	}
	return Problem{File: file, Msg: "invalid YAML"}
}

// decodeNode decodes a system: its type picks the plugin, whose config
// receives the other keys.
func (s *System) decodeNode(d *decoder, n ast.Node, path string) {
	es, ok := d.entries(n, path, 0)
	if !ok {
		return
	}
	rest := es[:0:0]
	var typ, hook *entry
	for i := range es {
		switch es[i].key {
		case "type":
			typ = &es[i]
		case "webhook":
			hook = &es[i]
		default:
			rest = append(rest, es[i])
		}
	}
	if typ == nil {
		return // Validate reports the missing type
	}
	tpath := path + ".type"
	d.record(tpath, typ.keyNode)
	v, ok := d.resolve(typ.value, tpath)
	if !ok || isNull(v) {
		return
	}
	sc, ok := d.scalar(v, tpath, "a string")
	if !ok {
		return
	}
	s.Type = sc.text
	cfg, ok := d.reg.newConfig(s.Type)
	if !ok {
		known := d.reg.Types()
		d.problem(v, tpath, fmt.Sprintf("unknown system type %s%s; known types: %s",
			sc.describe(), suggest(s.Type, known), strings.Join(known, ", ")))
		return
	}
	s.Config = cfg
	cv := reflect.ValueOf(s.Config)
	if cv.Kind() != reflect.Pointer || cv.Elem().Kind() != reflect.Struct {
		panic(fmt.Sprintf("config: NewConfig of system type %q must return a pointer to a struct", s.Type))
	}
	d.fields(rest, cv.Elem(), path, 1)
	if hook != nil {
		s.decodeWebhook(d, hook, path+".webhook")
	}
}

// decodeWebhook decodes a system's webhook section into the config the
// system's type makes for it (Type.Webhook).
func (s *System) decodeWebhook(d *decoder, e *entry, path string) {
	d.record(path, e.keyNode)
	cfg, ok := d.reg.WebhookConfig(s.Type)
	if !ok {
		d.problem(e.keyNode, path, d.reg.noWebhooks(s.Type))
		return
	}
	v, ok := d.resolve(e.value, path)
	if !ok || isNull(v) {
		d.problem(e.keyNode, path, "must be a mapping (secrets, and how to verify and parse deliveries)")
		return
	}
	es, ok := d.entries(v, path, 1)
	if !ok {
		return
	}
	cv := reflect.ValueOf(cfg)
	if cv.Kind() != reflect.Pointer || cv.Elem().Kind() != reflect.Struct {
		panic(fmt.Sprintf("config: Webhook of system type %q must return a pointer to a struct", s.Type))
	}
	d.fields(es, cv.Elem(), path, 2)
	s.Webhook = cfg
}

// qualifyTables rewrites valid unqualified table names as "public.<name>"
// in postgres.tables, in the from of pipelines that do not name a system
// and in the to of those that do.
func (c *Config) qualifyTables() {
	for i, t := range c.Postgres.Tables {
		if q, ok := qualify(t); ok {
			c.Postgres.Tables[i] = q
		}
	}
	for _, p := range c.Pipelines {
		if _, isSystem := c.Systems[p.From]; isSystem {
			if q, ok := qualify(p.To); ok {
				p.To = q
			}
			continue
		}
		if q, ok := qualify(p.From); ok {
			p.From = q
		}
	}
	for _, p := range c.Pipelines {
		for _, l := range p.Lookups {
			if q, ok := qualify(l.Table); ok {
				l.Table = q
			}
		}
	}
}

// LoadHTTP reads only the http section of the config file at path: what
// a client of the daemon (cdcd status) needs to find and ask it. Variables
// named elsewhere in the file (vendor secrets) need not be set, and other
// sections are not checked.
func LoadHTTP(path string) (HTTP, error) {
	h := Default().HTTP
	data, err := os.ReadFile(path)
	if err != nil {
		return h, fmt.Errorf("read config: %w", err)
	}
	d := newDecoder(path, nil, os.LookupEnv)
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		return h, &Errors{Problems: []Problem{syntaxProblem(path, err)}}
	}
	if len(f.Docs) == 0 || f.Docs[0] == nil || f.Docs[0].Body == nil {
		return h, nil
	}
	root := f.Docs[0].Body
	ast.Walk(anchorVisitor(d.anchors), root)
	if root, ok := d.resolve(root, ""); ok && !isNull(root) {
		if es, ok := d.entries(root, "", 0); ok {
			for _, e := range es {
				if e.key == "http" {
					d.record("http", e.keyNode)
					d.value(e.value, reflect.ValueOf(&h).Elem(), "http", 1)
				}
			}
		}
	}
	if len(d.probs) > 0 {
		errs := &Errors{Problems: d.probs}
		errs.sort()
		return h, errs
	}
	return h, nil
}
