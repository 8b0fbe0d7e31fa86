package config

import (
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/conflict"
)

func TestConflictPolicy(t *testing.T) {
	t.Parallel()
	p := (*Conflict)(nil).Policy()
	if len(p.Rules) != 3 || p.Rules[1].Kind != conflict.KindNewest || p.Rules[2].Kind != conflict.KindManual || p.Skew != time.Minute || p.UsesLLM() {
		t.Fatalf("default policy %+v", p)
	}
	c := DefaultConflict()
	c.Fields = map[string][]ConflictRule{"price": {{Kind: "prefer", Side: "erp"}, {Kind: "llm"}}}
	c.LLM = &conflict.LLMConfig{AutoApply: true}
	p = c.Policy()
	if p.Fields["price"][0] != (conflict.Rule{Kind: conflict.KindPrefer, Side: "erp"}) || !p.AutoApply || !p.UsesLLM() {
		t.Fatalf("policy %+v", p)
	}
}
