package conflict

import (
	"slices"

	"github.com/cdcd-dev/cdcd/config"
)

// PolicyOf is the Policy of a pipeline's conflict: section (nil means
// config.DefaultConflict).
func PolicyOf(c *config.Conflict) Policy {
	if c == nil {
		c = config.DefaultConflict()
	}
	rules := func(rs []config.ConflictRule) []Rule {
		out := make([]Rule, len(rs))
		for i, r := range rs {
			out[i] = Rule{Kind: r.Kind, Side: r.Side}
		}
		return out
	}
	p := Policy{Rules: rules(c.Rules()), Skew: c.Skew, AutoApply: c.LLM != nil && c.LLM.AutoApply}
	for f, rs := range c.Fields {
		if p.Fields == nil {
			p.Fields = map[string][]Rule{}
		}
		p.Fields[f] = rules(rs)
	}
	return p
}

// UsesLLM reports whether any chain of p has an llm rule.
func (p Policy) UsesLLM() bool {
	isLLM := func(r Rule) bool { return r.Kind == KindLLM }
	if slices.ContainsFunc(p.Rules, isLLM) {
		return true
	}
	for _, rs := range p.Fields {
		if slices.ContainsFunc(rs, isLLM) {
			return true
		}
	}
	return false
}
