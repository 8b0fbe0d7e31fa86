// Package conflict decides what a record becomes when both the local
// database and a remote system changed it since their last sync.
//
// The merge is three-way and per field, against the base version (the
// values both sides agreed on at the last sync). A field changed on one side
// only takes that side's value, whatever the policy. A field changed on
// both sides to different values is a conflict, which the policy's chain of
// rules decides or leaves pending for a person. Resolve and Apply are pure:
// the same input always gives the same Decision, and they neither store nor
// log anything.
package conflict

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/echo"
)

// Values maps field names to JSON values. An absent field is unknown (a
// side that omits it did not change it); the JSON null is a blank value.
type Values map[string]json.RawMessage

// Equal reports whether v and w hold the same fields with equal values
// (compared as values: numbers by value, numeric strings as numbers).
func (v Values) Equal(w Values) bool { return maps.EqualFunc(v, w, equal) }

// Side is one side's current version of a record.
type Side struct {
	Values Values
	// Time is when the side's change happened: the local commit time or the
	// vendor's occurred-at time. The zero Time is unknown.
	Time time.Time
	// Version is the vendor's version or the local LSN, kept for the record
	// of the conflict; no rule reads it.
	Version string
}

// Input is a record changed on both sides since the base version.
type Input struct {
	Pipeline string
	// System is the remote system's name, as rules that prefer a side
	// name it.
	System string
	// Fields are the mapped fields to merge, in any order. Empty means every
	// field present in Base, Local or Remote. Other fields are left as Base
	// has them.
	Fields []string
	Base   Values
	Local  Side
	Remote Side
}

// Winners of a field, as FieldDecision.Winner names them.
const (
	WinnerLocal  = "local"
	WinnerRemote = "remote"
	WinnerLLM    = "llm"
	// WinnerMerged is a value given by a person that is neither side's.
	WinnerMerged = "merged"
)

// FieldDecision is how one conflicting field was decided.
type FieldDecision struct {
	// Winner is whose value the field takes: WinnerLocal, WinnerRemote,
	// WinnerLLM, WinnerMerged, or "" while the field is pending.
	Winner string
	// Rule is the rule that decided or stopped at the field ("newest",
	// "prefer:erp", "manual"). A pending field has "manual", or "llm" when
	// it waits with a proposal.
	Rule string
}

// Decision is the outcome of merging a record.
type Decision struct {
	// Result is Base overlaid with every decided value: the record both
	// sides should converge to. A pending field keeps its local value.
	Result Values
	// Conflicts are the fields changed on both sides to different values,
	// sorted.
	Conflicts []string
	// Fields says how each conflicting field was decided.
	Fields map[string]FieldDecision
	// Pending are the conflicting fields nobody decided yet, sorted.
	Pending []string
	// Proposal holds the proposed values of pending fields that an llm
	// rule proposed but may not apply.
	Proposal Values
	// ToLocal and ToRemote are the decided values each side lacks: what
	// must be written to the local row and to the remote record. Pending
	// fields are in neither.
	ToLocal  Values
	ToRemote Values
}

// Resolved reports whether every conflicting field is decided.
func (d Decision) Resolved() bool { return len(d.Pending) == 0 }

// Rule summarises what decided the record: "merge" without conflicts,
// "pending" while any field is pending, otherwise the distinct rules that
// decided the conflicting fields, sorted and joined by "+".
func (d Decision) Rule() string {
	switch {
	case len(d.Conflicts) == 0:
		return "merge"
	case len(d.Pending) > 0:
		return "pending"
	}
	var rules []string
	for _, fd := range d.Fields {
		rules = append(rules, fd.Rule)
	}
	slices.Sort(rules)
	return strings.Join(slices.Compact(rules), "+")
}

// ErrChoice wraps Apply's complaints about a choice or its merged values.
var ErrChoice = errors.New("invalid resolution")

// Choices of Apply.
const (
	ChoiceLocal  = "local"
	ChoiceRemote = "remote"
	ChoiceMerged = "merged"
)

// Apply resolves every conflict of in as a person chose: ChoiceLocal or
// ChoiceRemote gives each conflicting field that side's value, ChoiceMerged
// the value merged holds for it. merged must hold every conflicting field
// and no unmapped one; its values for fields not in conflict are ignored,
// since one-sided changes always merge. Fields changed on one side merge as
// in Resolve.
func Apply(in Input, choice string, merged Values) (Decision, error) {
	m := newMerge(in)
	outs := make(map[string]outcome, len(m.conflicts))
	switch choice {
	case ChoiceLocal, ChoiceRemote:
		for _, f := range m.conflicts {
			outs[f] = m.won(f, choice, "manual")
		}
	case ChoiceMerged:
		if err := m.checkMerged(merged); err != nil {
			return Decision{}, fmt.Errorf("%w: %w", ErrChoice, err)
		}
		for _, f := range m.conflicts {
			v := merged[f]
			winner := WinnerMerged
			if equal(v, m.local[f]) {
				winner = WinnerLocal
			} else if equal(v, m.remote[f]) {
				winner = WinnerRemote
			}
			outs[f] = outcome{value: v, fd: FieldDecision{Winner: winner, Rule: "manual"}}
		}
	default:
		return Decision{}, fmt.Errorf("%w: unknown choice %q; use %s, %s or %s", ErrChoice, choice, ChoiceLocal, ChoiceRemote, ChoiceMerged)
	}
	return m.decision(outs, nil), nil
}

func (m *merge) checkMerged(merged Values) error {
	var errs []error
	for _, f := range slices.Sorted(maps.Keys(merged)) {
		switch {
		case !m.mapped[f]:
			errs = append(errs, fmt.Errorf("merged value for unknown field %q", f))
		case !json.Valid(merged[f]):
			errs = append(errs, fmt.Errorf("merged value for field %q is not valid JSON", f))
		}
	}
	for _, f := range m.conflicts {
		if _, ok := merged[f]; !ok {
			errs = append(errs, fmt.Errorf("no merged value for conflicting field %q", f))
		}
	}
	return errors.Join(errs...)
}

// merge is a record split into per-field changes.
type merge struct {
	in            Input
	fields        []string // considered, sorted
	mapped        map[string]bool
	local, remote Values // effective values: an absent side value is the base's
	localChanged  map[string]bool
	remoteChanged map[string]bool
	conflicts     []string
	conflicting   map[string]bool
}

// outcome is the decision of one conflicting field.
type outcome struct {
	value   json.RawMessage
	fd      FieldDecision
	pending bool
}

func newMerge(in Input) *merge {
	m := &merge{
		in:            in,
		mapped:        map[string]bool{},
		local:         Values{},
		remote:        Values{},
		localChanged:  map[string]bool{},
		remoteChanged: map[string]bool{},
		conflicting:   map[string]bool{},
	}
	names := in.Fields
	if len(names) == 0 {
		names = slices.Concat(slices.Collect(maps.Keys(in.Base)),
			slices.Collect(maps.Keys(in.Local.Values)),
			slices.Collect(maps.Keys(in.Remote.Values)))
	}
	m.fields = slices.Compact(slices.Sorted(slices.Values(names)))
	for _, f := range m.fields {
		m.mapped[f] = true
		base, inBase := in.Base[f]
		if !inBase {
			base = null
		}
		m.local[f], m.localChanged[f] = side(in.Local.Values, f, base, inBase)
		m.remote[f], m.remoteChanged[f] = side(in.Remote.Values, f, base, inBase)
		if m.localChanged[f] && m.remoteChanged[f] && !equal(m.local[f], m.remote[f]) {
			m.conflicts = append(m.conflicts, f)
			m.conflicting[f] = true
		}
	}
	return m
}

var null = json.RawMessage("null")

// side returns the effective value of field f on a side and whether the side
// changed it from base. A side without the field did not change it; nor did
// one that holds null where the base had nothing.
func side(v Values, f string, base json.RawMessage, inBase bool) (json.RawMessage, bool) {
	sv, ok := v[f]
	if !ok {
		if !inBase {
			return nil, false
		}
		return base, false
	}
	return sv, !equal(sv, base)
}

// won is the outcome of a field taken from one side.
func (m *merge) won(f, winner, rule string) outcome {
	v := m.local[f]
	if winner == WinnerRemote {
		v = m.remote[f]
	}
	return outcome{value: v, fd: FieldDecision{Winner: winner, Rule: rule}}
}

// decision builds the Decision from the outcomes of the conflicting fields.
func (m *merge) decision(outs map[string]outcome, proposal Values) Decision {
	d := Decision{Result: maps.Clone(m.in.Base), Proposal: proposal}
	if d.Result == nil {
		d.Result = Values{}
	}
	if len(m.conflicts) > 0 {
		d.Conflicts = slices.Clone(m.conflicts)
		d.Fields = make(map[string]FieldDecision, len(m.conflicts))
	}
	for _, f := range m.fields {
		var v json.RawMessage
		switch {
		case m.conflicting[f]:
			o := outs[f]
			d.Fields[f] = o.fd
			if o.pending {
				d.Pending = append(d.Pending, f)
				d.Result[f] = m.local[f]
				continue
			}
			v = o.value
		case m.localChanged[f]:
			v = m.local[f]
		case m.remoteChanged[f]:
			v = m.remote[f]
		default:
			continue // unchanged: Result holds the base value
		}
		d.Result[f] = v
		if !equal(v, orNull(m.local[f])) {
			d.ToLocal = put(d.ToLocal, f, v)
		}
		if !equal(v, orNull(m.remote[f])) {
			d.ToRemote = put(d.ToRemote, f, v)
		}
	}
	return d
}

func put(vs Values, f string, v json.RawMessage) Values {
	if vs == nil {
		vs = Values{}
	}
	vs[f] = v
	return vs
}

func orNull(v json.RawMessage) json.RawMessage {
	if v == nil {
		return null
	}
	return v
}

// equal compares two JSON values as values, as echo.Equal does: numbers by
// value, numeric strings equal to numbers, objects regardless of key order.
// Values that are not valid JSON are equal only byte for byte.
func equal(a, b json.RawMessage) bool {
	if bytes.Equal(a, b) {
		return true
	}
	v, err := cdc.DecodeValue(b)
	if err != nil {
		return false
	}
	return echo.Equal(a, v)
}

// blank reports whether v is null, "" or absent.
func blank(v json.RawMessage) bool {
	if len(bytes.TrimSpace(v)) == 0 {
		return true
	}
	var s any
	if err := json.Unmarshal(v, &s); err != nil {
		return false
	}
	return s == nil || s == ""
}
