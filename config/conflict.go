package config

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/cdcd-dev/cdcd/conflict"
	"github.com/goccy/go-yaml/ast"
)

// Conflict is an inbound pipeline's conflict policy: the rules that decide
// a field changed on both sides since the last sync, tried in order until
// one decides. Fields overrides the chain for single fields.
//
//	conflict:
//	  strategy: merge
//	  then: [{prefer: erp}, newest, manual]
//	  skew: 60s
//	  fields: {price: [{prefer: erp}], lifecyclestage: [{prefer_unless_blank: hubspot}]}
type Conflict struct {
	// Strategy is the first rule; Then the rules after it.
	Strategy ConflictRule              `yaml:"strategy"`
	Then     []ConflictRule            `yaml:"then"`
	Skew     time.Duration             `yaml:"skew"`
	Fields   map[string][]ConflictRule `yaml:"fields"`
	// LLM configures the llm rule.
	LLM *conflict.LLMConfig `yaml:"llm"`
	// Remind is how often an escalated conflict is alerted again.
	Remind time.Duration `yaml:"remind"`
}

// Conflict defaults.
const (
	DefaultConflictSkew   = conflict.DefaultSkew
	DefaultConflictRemind = 24 * time.Hour
)

// ConflictRule is a conflict.Rule as the file writes it: merge, newest,
// manual or llm, or {prefer: <system|local>} or
// {prefer_unless_blank: <system|local>}.
type ConflictRule conflict.Rule

func (r ConflictRule) String() string { return conflict.Rule(r).String() }

// DefaultConflict is the policy of an inbound pipeline without a
// conflict: section: merge what merges, then the newest change by more
// than the skew, then hold for a person.
func DefaultConflict() *Conflict {
	return &Conflict{
		Strategy: ConflictRule{Kind: conflict.KindMerge},
		Then:     []ConflictRule{{Kind: conflict.KindNewest}, {Kind: conflict.KindManual}},
		Skew:     DefaultConflictSkew,
		Remind:   DefaultConflictRemind,
	}
}

// SetDefaults sets what a conflict: section leaves out: strategy merge,
// a 60 s skew, a daily reminder. Then is empty: the chain is as written.
func (c *Conflict) SetDefaults() {
	*c = Conflict{Strategy: ConflictRule{Kind: conflict.KindMerge}, Skew: DefaultConflictSkew, Remind: DefaultConflictRemind}
}

// Rules is the chain: Strategy, then Then.
func (c *Conflict) Rules() []ConflictRule {
	return append([]ConflictRule{c.Strategy}, c.Then...)
}

// Policy is the conflict package's policy of c; a nil c is
// DefaultConflict's.
func (c *Conflict) Policy() conflict.Policy {
	if c == nil {
		c = DefaultConflict()
	}
	rules := func(rs []ConflictRule) []conflict.Rule {
		out := make([]conflict.Rule, len(rs))
		for i, r := range rs {
			out[i] = conflict.Rule(r)
		}
		return out
	}
	p := conflict.Policy{Rules: rules(c.Rules()), Skew: c.Skew, AutoApply: c.LLM != nil && c.LLM.AutoApply}
	for f, rs := range c.Fields {
		if p.Fields == nil {
			p.Fields = map[string][]conflict.Rule{}
		}
		p.Fields[f] = rules(rs)
	}
	return p
}

const conflictRuleWant = "merge, newest, manual, llm, {prefer: <system or local>} or {prefer_unless_blank: <system or local>}"

func (r *ConflictRule) decodeNode(d *decoder, n ast.Node, path string) {
	if isScalar(n) {
		sc, ok := d.scalar(n, path, conflictRuleWant)
		if !ok {
			return
		}
		switch {
		case !slices.Contains(conflict.Kinds, sc.text):
			d.problem(n, path, fmt.Sprintf("%s is not a rule; want %s%s", sc.describe(), conflictRuleWant,
				suggest(sc.text, conflict.Kinds)))
		case conflict.Sided(sc.text):
			d.problem(n, path, fmt.Sprintf("%s needs the side it prefers: {%s: <system or local>}", sc.text, sc.text))
		default:
			*r = ConflictRule{Kind: sc.text}
		}
		return
	}
	es, ok := d.entries(n, path, 0)
	if !ok {
		return
	}
	if len(es) != 1 || !conflict.Sided(es[0].key) {
		d.problem(n, path, "expected "+conflictRuleWant)
		return
	}
	e := es[0]
	p := path + "." + e.key
	d.record(p, e.keyNode)
	v, ok := d.resolve(e.value, p)
	if !ok {
		return
	}
	if sc, ok := d.scalar(v, p, "a system's name or local"); ok {
		*r = ConflictRule{Kind: e.key, Side: sc.text}
	}
}

// validate checks the policy of a pipeline from system.
func (c *Conflict) validate(v *problems, path, system string) {
	if c.Skew < 0 {
		v.add(path+".skew", "must not be negative")
	}
	if c.Remind < 0 {
		v.add(path+".remind", "must not be negative")
	}
	usesLLM := false
	check := func(rules []ConflictRule, p string) {
		for i, r := range rules {
			rp := fmt.Sprintf("%s[%d]", p, i)
			if p == path+".strategy" {
				rp = p
			}
			if r.Kind == "" {
				continue // required, reported below
			}
			if err := conflict.Rule(r).Check(system); err != nil {
				v.add(rp+"."+r.Kind, err.Error())
			}
			usesLLM = usesLLM || r.Kind == conflict.KindLLM
		}
	}
	if c.Strategy.Kind == "" {
		v.add(path+".strategy", "required: "+conflictRuleWant)
	}
	check([]ConflictRule{c.Strategy}, path+".strategy")
	check(c.Then, path+".then")
	for _, f := range slices.Sorted(maps.Keys(c.Fields)) {
		if len(c.Fields[f]) == 0 {
			v.add(path+".fields."+f, "needs at least one rule")
		}
		check(c.Fields[f], path+".fields."+f)
	}
	switch {
	case usesLLM && c.LLM == nil:
		v.add(path+".llm", "required by the llm rule: base_url and model of an OpenAI-compatible endpoint")
	case c.LLM != nil:
		if !strings.HasPrefix(c.LLM.BaseURL, "http://") && !strings.HasPrefix(c.LLM.BaseURL, "https://") {
			v.add(path+".llm.base_url", "required: the endpoint's URL (https://...)")
		}
		if c.LLM.Model == "" {
			v.add(path+".llm.model", "required")
		}
		if c.LLM.Timeout < 0 {
			v.add(path+".llm.timeout", "must not be negative")
		}
	}
}
