package conflict

import (
	"slices"
)

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
