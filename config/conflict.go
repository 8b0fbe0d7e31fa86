package config

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

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
	LLM *ConflictLLM `yaml:"llm"`
	// Remind is how often an escalated conflict is alerted again.
	Remind time.Duration `yaml:"remind"`
}

// Conflict rule kinds.
const (
	RuleMerge             = "merge"
	RuleNewest            = "newest"
	RulePrefer            = "prefer"
	RulePreferUnlessBlank = "prefer_unless_blank"
	RuleManual            = "manual"
	RuleLLM               = "llm"
)

// Conflict defaults.
const (
	DefaultConflictSkew   = 60 * time.Second
	DefaultConflictRemind = 24 * time.Hour
	DefaultLLMTimeout     = 10 * time.Second
)

// ConflictRule is one rule: merge, newest, manual or llm, or
// {prefer: <system|local>} or {prefer_unless_blank: <system|local>}.
type ConflictRule struct {
	Kind string
	// Side is the preferred side of prefer and prefer_unless_blank: local
	// or a system's name.
	Side string
}

func (r ConflictRule) String() string {
	if r.Side != "" {
		return r.Kind + ":" + r.Side
	}
	return r.Kind
}

// ConflictLLM is an OpenAI-compatible chat endpoint that proposes merges.
type ConflictLLM struct {
	BaseURL string `yaml:"base_url"`
	Model   string `yaml:"model"`
	// APIKeyEnv names the environment variable holding the key.
	APIKeyEnv string        `yaml:"api_key_env"`
	Timeout   time.Duration `yaml:"timeout"`
	// AutoApply applies a valid proposal; otherwise it is only proposed
	// and the conflict waits for someone to accept it.
	AutoApply bool `yaml:"auto_apply"`
}

// DefaultConflict is the policy of an inbound pipeline without a
// conflict: section: merge what merges, then the newest change by more
// than the skew, then hold for a person.
func DefaultConflict() *Conflict {
	return &Conflict{
		Strategy: ConflictRule{Kind: RuleMerge},
		Then:     []ConflictRule{{Kind: RuleNewest}, {Kind: RuleManual}},
		Skew:     DefaultConflictSkew,
		Remind:   DefaultConflictRemind,
	}
}

// SetDefaults sets what a conflict: section leaves out: strategy merge,
// a 60 s skew, a daily reminder. Then is empty: the chain is as written.
func (c *Conflict) SetDefaults() {
	*c = Conflict{Strategy: ConflictRule{Kind: RuleMerge}, Skew: DefaultConflictSkew, Remind: DefaultConflictRemind}
}

// SetDefaults sets the default timeout.
func (c *ConflictLLM) SetDefaults() { *c = ConflictLLM{Timeout: DefaultLLMTimeout} }

// Rules is the chain: Strategy, then Then.
func (c *Conflict) Rules() []ConflictRule {
	return append([]ConflictRule{c.Strategy}, c.Then...)
}

const conflictRuleWant = "merge, newest, manual, llm, {prefer: <system or local>} or {prefer_unless_blank: <system or local>}"

func (r *ConflictRule) decodeNode(d *decoder, n ast.Node, path string) {
	if isScalar(n) {
		sc, ok := d.scalar(n, path, conflictRuleWant)
		if !ok {
			return
		}
		switch sc.text {
		case RuleMerge, RuleNewest, RuleManual, RuleLLM:
			*r = ConflictRule{Kind: sc.text}
		case RulePrefer, RulePreferUnlessBlank:
			d.problem(n, path, fmt.Sprintf("%s needs the side it prefers: {%s: <system or local>}", sc.text, sc.text))
		default:
			d.problem(n, path, fmt.Sprintf("%s is not a rule; want %s%s", sc.describe(), conflictRuleWant,
				suggest(sc.text, []string{RuleMerge, RuleNewest, RuleManual, RuleLLM, RulePrefer, RulePreferUnlessBlank})))
		}
		return
	}
	es, ok := d.entries(n, path, 0)
	if !ok {
		return
	}
	if len(es) != 1 || (es[0].key != RulePrefer && es[0].key != RulePreferUnlessBlank) {
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
			switch r.Kind {
			case RulePrefer, RulePreferUnlessBlank:
				if r.Side != "local" && r.Side != system {
					v.add(rp+"."+r.Kind, fmt.Sprintf("%q is neither local nor %q, the pipeline's system", r.Side, system))
				}
			case RuleLLM:
				usesLLM = true
			}
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
