package conflict

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// Rule kinds.
const (
	// KindMerge decides no conflict. One-sided changes merge under every
	// policy; a chain starts with merge to say that is all it does first.
	KindMerge = "merge"
	// KindNewest gives the field to the side that changed last, when the
	// two change times are further apart than the policy's skew window.
	KindNewest = "newest"
	// KindPrefer gives the field to the side Rule.Side names: "local" or
	// the remote system's name.
	KindPrefer = "prefer"
	// KindPreferUnlessBlank is KindPrefer unless that side's value is
	// null, "" or absent.
	KindPreferUnlessBlank = "prefer_unless_blank"
	// KindManual ends the chain: the field waits for a person.
	KindManual = "manual"
	// KindLLM asks the Proposer for a value.
	KindLLM = "llm"
)

// Kinds lists every rule kind.
var Kinds = []string{KindMerge, KindNewest, KindManual, KindLLM, KindPrefer, KindPreferUnlessBlank}

// Sided reports whether a rule of kind names the side it favours.
func Sided(kind string) bool { return kind == KindPrefer || kind == KindPreferUnlessBlank }

// SideLocal names the local database in Rule.Side.
const SideLocal = "local"

// DefaultSkew is the newest rule's default clock-skew window.
const DefaultSkew = 60 * time.Second

// Rule is one step of a policy's chain. A rule either decides a
// conflicting field or lets it fall through to the next rule.
type Rule struct {
	Kind string
	// Side is the side KindPrefer and KindPreferUnlessBlank favour.
	Side string
}

// Check says what is wrong with r as a rule of a pipeline from system, or
// returns nil: a kind of Kinds, and local or system as the side of a kind
// that favours one.
func (r Rule) Check(system string) error {
	switch {
	case !slices.Contains(Kinds, r.Kind):
		return fmt.Errorf("%q is not a rule", r.Kind)
	case Sided(r.Kind) && r.Side != SideLocal && r.Side != system:
		return fmt.Errorf("%q is neither local nor %q, the pipeline's system", r.Side, system)
	}
	return nil
}

func (r Rule) String() string {
	if r.Side == "" {
		return r.Kind
	}
	return r.Kind + ":" + r.Side
}

// Policy is how a pipeline decides conflicting fields. A field no rule
// decides is pending, as if the chain ended with manual.
type Policy struct {
	Rules []Rule
	// Fields holds per-field chains, each replacing Rules for its field.
	Fields map[string][]Rule
	// Skew is the newest rule's window; 0 means DefaultSkew.
	Skew time.Duration
	// AutoApply lets llm proposals decide fields. Otherwise a proposal
	// leaves its fields pending with the proposal attached.
	AutoApply bool
}

func (p Policy) chain(field string) []Rule {
	if c, ok := p.Fields[field]; ok {
		return c
	}
	return p.Rules
}

// Proposer proposes values for conflicting fields of a record. The answer
// must hold a valid JSON value for every asked field and no unmapped field;
// Resolve treats any other answer, an error, or ctx ending like a rule that
// decides nothing. Proposals need not be deterministic, so a Decision made
// with one is only as repeatable as its Proposer.
type Proposer interface {
	Propose(ctx context.Context, in Input, fields []string) (Values, error)
}

// Resolve merges the record of in and decides each conflicting field by the
// policy's chain for it. llm may be nil, in which case llm rules decide
// nothing. Resolve asks llm at most once, for every field whose chain
// reaches an llm rule.
func Resolve(ctx context.Context, in Input, p Policy, llm Proposer) Decision {
	m := newMerge(in)
	skew := p.Skew
	if skew <= 0 {
		skew = DefaultSkew
	}
	outs := make(map[string]outcome, len(m.conflicts))
	next := make(map[string]int, len(m.conflicts)) // position in each chain

	// walk runs each undecided field's chain until a rule decides it or it
	// reaches an llm rule that may still be asked; it returns the latter.
	walk := func(ask bool) []string {
		var waiting []string
		for _, f := range m.conflicts {
			if _, done := outs[f]; done {
				continue
			}
			chain := p.chain(f)
			for ; next[f] < len(chain); next[f]++ {
				r := chain[next[f]]
				if r.Kind == KindLLM && ask && llm != nil {
					waiting = append(waiting, f)
					break
				}
				if o, ok := m.decide(r, f, skew); ok {
					outs[f] = o
					break
				}
			}
			if next[f] == len(chain) {
				outs[f] = outcome{fd: FieldDecision{Rule: KindManual}, pending: true}
			}
		}
		return waiting
	}

	var proposal Values
	if waiting := walk(true); len(waiting) > 0 {
		vs, ok := m.propose(ctx, llm, waiting)
		for _, f := range waiting {
			switch {
			case !ok:
				next[f]++ // fall through past the llm rule
			case p.AutoApply:
				outs[f] = outcome{value: vs[f], fd: FieldDecision{Winner: WinnerLLM, Rule: KindLLM}}
			default:
				outs[f] = outcome{fd: FieldDecision{Rule: KindLLM}, pending: true}
				proposal = vs
			}
		}
		if !ok {
			walk(false)
		}
	}
	return m.decision(outs, proposal)
}

// decide applies one rule other than llm to conflicting field f.
func (m *merge) decide(r Rule, f string, skew time.Duration) (outcome, bool) {
	switch r.Kind {
	case KindManual:
		return outcome{fd: FieldDecision{Rule: KindManual}, pending: true}, true
	case KindNewest:
		lt, rt := m.in.Local.Time, m.in.Remote.Time
		if lt.IsZero() || rt.IsZero() {
			return outcome{}, false
		}
		switch d := lt.Sub(rt); {
		case d > skew:
			return m.won(f, WinnerLocal, r.String()), true
		case d < -skew:
			return m.won(f, WinnerRemote, r.String()), true
		}
	case KindPrefer, KindPreferUnlessBlank:
		var v json.RawMessage
		var winner string
		switch {
		case r.Side == SideLocal:
			v, winner = m.local[f], WinnerLocal
		case r.Side != "" && r.Side == m.in.System:
			v, winner = m.remote[f], WinnerRemote
		default:
			return outcome{}, false
		}
		if r.Kind == KindPreferUnlessBlank && blank(v) {
			return outcome{}, false
		}
		return m.won(f, winner, r.String()), true
	}
	return outcome{}, false
}

// propose asks llm for fields and checks its answer.
func (m *merge) propose(ctx context.Context, llm Proposer, fields []string) (Values, bool) {
	vs, err := llm.Propose(ctx, m.in, fields)
	if err != nil {
		return nil, false
	}
	for f := range vs {
		if !m.mapped[f] {
			return nil, false
		}
	}
	out := make(Values, len(fields))
	for _, f := range fields {
		v, ok := vs[f]
		if !ok || !json.Valid(v) {
			return nil, false
		}
		out[f] = v
	}
	return out, true
}
