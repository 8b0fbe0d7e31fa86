package hubspot

import (
	"fmt"
	"strconv"
	"strings"
)

// matcher maps the results and errors of one batch answer to its inputs.
// HubSpot promises no order, and echoes objectWriteTraceId only in some
// API versions (the v3 reference shows results without it), so a result
// is matched by, in turn: its trace id; its id (update) or id_property
// value (upsert); for a create, the value of the object's unique property
// (a contact's email) or else every property the input set. An error is
// matched by its trace id or the ids in its context. What is left pairs
// up only when one input and one answer remain.
type matcher struct {
	op, unique string
	inputs     []input
	outs       []outcome
	done       []bool
}

func newMatcher(w *Writer, object, op string, inputs []input) *matcher {
	m := &matcher{op: op, inputs: inputs, outs: make([]outcome, len(inputs)), done: make([]bool, len(inputs))}
	switch op {
	case "upsert":
		m.unique = w.idProperty
	case "create":
		m.unique = uniqueProperty(object)
	}
	return m
}

// uniqueProperty is the property whose values HubSpot keeps unique for
// every record of object, whatever the account's settings; "" when none.
func uniqueProperty(object string) string {
	if object == "contacts" {
		return "email"
	}
	return ""
}

func (m *matcher) match(ans *batchAnswer) []outcome {
	var results []int
	for k, r := range ans.Results {
		if i := m.find(r.TraceID, []string{r.ID}, r.Properties); i >= 0 {
			m.settle(i, outcome{id: r.ID, version: r.UpdatedAt})
			continue
		}
		results = append(results, k)
	}
	var errs []batchError
	for _, e := range ans.Errors {
		var trace string
		if t := e.Context["objectWriteTraceId"]; len(t) > 0 {
			trace = t[0]
		}
		if i := m.find(trace, e.Context["ids"], nil); i >= 0 {
			m.settle(i, itemOutcome(m.op, e))
			continue
		}
		errs = append(errs, e)
	}
	var missing []int
	for i := range m.inputs {
		if !m.done[i] {
			missing = append(missing, i)
		}
	}
	switch {
	case len(missing) == 1 && len(errs) == 1 && len(results) == 0:
		m.settle(missing[0], itemOutcome(m.op, errs[0]))
	case len(missing) == 1 && len(errs) == 0 && len(results) == 1:
		r := ans.Results[results[0]]
		m.settle(missing[0], outcome{id: r.ID, version: r.UpdatedAt})
	default:
		for _, i := range missing {
			m.outs[i].err = fmt.Errorf("batch %s: the input is missing from HubSpot's answer or cannot be told apart: %w", m.op, ErrOutcomeUnknown)
		}
	}
	return m.outs
}

func (m *matcher) settle(i int, o outcome) {
	m.outs[i], m.done[i] = o, true
}

// find returns the unsettled input an answer is for, or -1.
func (m *matcher) find(trace string, ids []string, props map[string]any) int {
	if i, err := strconv.Atoi(trace); err == nil && i >= 0 && i < len(m.inputs) && !m.done[i] {
		return i
	}
	for i, in := range m.inputs {
		if m.done[i] {
			continue
		}
		switch {
		case m.op == "update" && in.id != "" && containsFold(ids, in.id):
			return i
		case m.op == "upsert" && in.id != "" && (containsFold(ids, in.id) || strings.EqualFold(str(props[m.unique]), in.id)):
			return i
		case m.op == "create" && props != nil && sameRecord(m.unique, in.props, props):
			return i
		}
	}
	return -1
}

// sameRecord reports whether a created record with props is the one the
// input asked for: same unique value when there is one, else every
// property the input set. Two inputs with equal properties are
// interchangeable.
func sameRecord(unique string, in map[string]string, props map[string]any) bool {
	if v := in[unique]; unique != "" && v != "" {
		return strings.EqualFold(strings.TrimSpace(str(props[unique])), strings.TrimSpace(v))
	}
	for k, v := range in {
		if !strings.EqualFold(str(props[k]), v) {
			return false
		}
	}
	return len(in) > 0
}

func containsFold(ids []string, id string) bool {
	for _, v := range ids {
		if strings.EqualFold(v, id) {
			return true
		}
	}
	return false
}

func str(v any) string {
	s, _ := v.(string)
	return s
}
