package conflict

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func vals(kv ...string) Values {
	v := Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v[kv[i]] = json.RawMessage(kv[i+1])
	}
	return v
}

// contact is a record whose name changed on both sides and whose phone
// changed locally and email remotely.
func contact(localAt, remoteAt time.Time) Input {
	return Input{
		Pipeline: "crm-to-contacts", System: "crm", Fields: []string{"email", "name", "phone"},
		Base:   vals("email", `"a@x"`, "name", `"Ada"`, "phone", `"1"`),
		Local:  Side{Values: vals("email", `"a@x"`, "name", `"Ann"`, "phone", `"2"`), Time: localAt},
		Remote: Side{Values: vals("email", `"b@x"`, "name", `"Bea"`), Time: remoteAt},
	}
}

func chain(kinds ...string) []Rule {
	var rs []Rule
	for _, k := range kinds {
		r := Rule{Kind: k}
		if k == "prefer:local" || k == "prefer:crm" {
			r = Rule{Kind: KindPrefer, Side: k[len("prefer:"):]}
		}
		rs = append(rs, r)
	}
	return rs
}

func TestResolvePolicies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name           string
		in             Input
		p              Policy
		result, rule   string // the result's name and the decision's rule
		pending        bool
		toLocal, toRem []string
	}{
		{"merge alone leaves the conflict pending", contact(t0, t0), Policy{Rules: chain("merge")}, `"Ann"`, "pending", true, []string{"email"}, []string{"phone"}},
		{"newest: local later by more than the skew", contact(t0.Add(2*time.Minute), t0), Policy{Rules: chain("merge", "newest", "manual")}, `"Ann"`, "newest", false, []string{"email"}, []string{"name", "phone"}},
		{"newest: remote later", contact(t0, t0.Add(2*time.Minute)), Policy{Rules: chain("merge", "newest", "manual")}, `"Bea"`, "newest", false, []string{"email", "name"}, []string{"phone"}},
		{"newest within the skew falls through to manual", contact(t0, t0.Add(30*time.Second)), Policy{Rules: chain("merge", "newest", "manual")}, `"Ann"`, "pending", true, []string{"email"}, []string{"phone"}},
		{"newest without a local time falls through", contact(time.Time{}, t0), Policy{Rules: chain("newest", "prefer:crm")}, `"Bea"`, "prefer:crm", false, []string{"email", "name"}, []string{"phone"}},
		{"prefer local", contact(t0, t0), Policy{Rules: chain("prefer:local")}, `"Ann"`, "prefer:local", false, []string{"email"}, []string{"name", "phone"}},
		{"per-field chain wins over the pipeline's", contact(t0, t0), Policy{Rules: chain("manual"), Fields: map[string][]Rule{"name": chain("prefer:crm")}}, `"Bea"`, "prefer:crm", false, []string{"email", "name"}, []string{"phone"}},
		{"a skew of 10m keeps 2m inside", contact(t0.Add(2*time.Minute), t0), Policy{Rules: chain("newest"), Skew: 10 * time.Minute}, `"Ann"`, "pending", true, []string{"email"}, []string{"phone"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Resolve(context.Background(), tt.in, tt.p, nil)
			if !reflect.DeepEqual(d.Conflicts, []string{"name"}) {
				t.Fatalf("conflicts %v, want [name]", d.Conflicts)
			}
			if string(d.Result["name"]) != tt.result || d.Rule() != tt.rule || d.Resolved() == tt.pending {
				t.Fatalf("name %s rule %s resolved %v; want %s %s pending %v", d.Result["name"], d.Rule(), d.Resolved(), tt.result, tt.rule, tt.pending)
			}
			if got := keys(d.ToLocal); !reflect.DeepEqual(got, tt.toLocal) {
				t.Errorf("ToLocal %v, want %v", got, tt.toLocal)
			}
			if got := keys(d.ToRemote); !reflect.DeepEqual(got, tt.toRem) {
				t.Errorf("ToRemote %v, want %v", got, tt.toRem)
			}
			// One-sided changes survive every policy.
			if string(d.Result["email"]) != `"b@x"` || string(d.Result["phone"]) != `"2"` {
				t.Errorf("one-sided changes lost: %v", d.Result)
			}
		})
	}
}

func TestPreferUnlessBlank(t *testing.T) {
	t.Parallel()
	in := contact(t0, t0)
	in.Remote.Values["name"] = json.RawMessage(`""`)
	p := Policy{Rules: []Rule{{Kind: KindPreferUnlessBlank, Side: "crm"}, {Kind: KindPrefer, Side: SideLocal}}}
	d := Resolve(context.Background(), in, p, nil)
	if string(d.Result["name"]) != `"Ann"` || d.Fields["name"].Rule != "prefer:local" {
		t.Fatalf("a blank remote value won: %+v", d)
	}
	in.Remote.Values["name"] = json.RawMessage(`"Bea"`)
	if d := Resolve(context.Background(), in, p, nil); string(d.Result["name"]) != `"Bea"` {
		t.Fatalf("remote not preferred: %s", d.Result["name"])
	}
}

// Equal values on both sides, numbers as numeric strings included, are no
// conflict.
func TestSameChangeOnBothSides(t *testing.T) {
	t.Parallel()
	in := Input{System: "crm", Base: vals("n", `1`, "s", `"x"`), Local: Side{Values: vals("n", `2`, "s", `"y"`)}, Remote: Side{Values: vals("n", `"2"`, "s", `"y"`)}}
	d := Resolve(context.Background(), in, Policy{Rules: chain("manual")}, nil)
	if len(d.Conflicts) != 0 || !d.Resolved() || d.Rule() != "merge" || len(d.ToLocal) != 0 {
		t.Fatalf("%+v", d)
	}
}

// A timestamp the local row holds in Postgres's text form is the base's
// vendor form of the same instant: unchanged locally, so the system's
// change of it and of another field is no conflict.
func TestTimestampInAnotherTextFormIsUnchanged(t *testing.T) {
	t.Parallel()
	in := Input{System: "crm", Fields: []string{"seen", "name"},
		Base:   vals("seen", `"2026-03-01T07:34:41.123Z"`, "name", `"Ada"`),
		Local:  Side{Values: vals("seen", `"2026-03-01T07:34:41.123000Z"`, "name", `"Ada"`)},
		Remote: Side{Values: vals("seen", `"2026-03-02T08:00:00Z"`, "name", `"Bea"`)}}
	d := Resolve(context.Background(), in, Policy{Rules: chain("manual")}, nil)
	if len(d.Conflicts) != 0 || !d.Resolved() || keys(d.ToLocal) == nil || len(d.ToLocal) != 2 {
		t.Fatalf("conflicts %v, to local %v; want none, both fields to local", d.Conflicts, keys(d.ToLocal))
	}
}

func TestApply(t *testing.T) {
	t.Parallel()
	in := contact(t0, t0)
	for choice, want := range map[string]string{ChoiceLocal: `"Ann"`, ChoiceRemote: `"Bea"`} {
		d, err := Apply(in, choice, nil)
		if err != nil || string(d.Result["name"]) != want || !d.Resolved() || d.Fields["name"].Rule != "manual" {
			t.Fatalf("%s: %+v, %v", choice, d, err)
		}
	}
	d, err := Apply(in, ChoiceMerged, vals("name", `"Ann Bea"`))
	if err != nil || string(d.Result["name"]) != `"Ann Bea"` || d.Fields["name"].Winner != WinnerMerged {
		t.Fatalf("merged: %+v, %v", d, err)
	}
	for _, bad := range []Values{nil, vals("name", `"x"`, "ssn", `"1"`), vals("name", `nope`)} {
		if _, err := Apply(in, ChoiceMerged, bad); !errors.Is(err, ErrChoice) {
			t.Errorf("merged %v: %v", bad, err)
		}
	}
	if _, err := Apply(in, "both", nil); !errors.Is(err, ErrChoice) {
		t.Errorf("unknown choice: %v", err)
	}
}

type proposer struct {
	v   Values
	err error
	n   int
}

func (p *proposer) Propose(context.Context, Input, []string) (Values, error) {
	p.n++
	return p.v, p.err
}

func TestLLMRule(t *testing.T) {
	t.Parallel()
	in := contact(t0, t0)
	rules := Policy{Rules: chain("llm", "prefer:crm")}
	good := &proposer{v: vals("name", `"Ann (Bea)"`)}
	d := Resolve(context.Background(), in, rules, good)
	if d.Resolved() || string(d.Proposal["name"]) != `"Ann (Bea)"` || d.Fields["name"].Rule != KindLLM || string(d.Result["name"]) != `"Ann"` {
		t.Fatalf("a proposal was applied without auto_apply: %+v", d)
	}
	rules.AutoApply = true
	if d := Resolve(context.Background(), in, rules, good); !d.Resolved() || string(d.Result["name"]) != `"Ann (Bea)"` || d.Fields["name"].Winner != WinnerLLM {
		t.Fatalf("auto_apply: %+v", d)
	}
	for name, p := range map[string]*proposer{
		"error":         {err: errors.New("timeout")},
		"missing field": {v: vals("other", `1`)},
		"extra field":   {v: vals("name", `"x"`, "ssn", `"1"`)},
		"nil proposer":  nil,
	} {
		var pr Proposer
		if p != nil {
			pr = p
		}
		if d := Resolve(context.Background(), in, rules, pr); string(d.Result["name"]) != `"Bea"` || d.Fields["name"].Rule != "prefer:crm" {
			t.Errorf("%s: did not fall through: %+v", name, d)
		}
	}
}

// Properties over random records and policies.
func TestProperties(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(7, 11))
	fields := []string{"a", "b", "c", "d", "e"}
	value := func() json.RawMessage {
		return json.RawMessage(fmt.Sprintf(`"%d"`, r.IntN(3)))
	}
	kinds := []Rule{{Kind: KindMerge}, {Kind: KindNewest}, {Kind: KindManual}, {Kind: KindPrefer, Side: SideLocal},
		{Kind: KindPrefer, Side: "crm"}, {Kind: KindPreferUnlessBlank, Side: "crm"}}
	for i := range 3000 {
		in := Input{System: "crm", Fields: slices.Clone(fields), Base: Values{}, Local: Side{Values: Values{}, Time: t0.Add(time.Duration(r.IntN(300)) * time.Second)},
			Remote: Side{Values: Values{}, Time: t0.Add(time.Duration(r.IntN(300)) * time.Second)}}
		for _, f := range fields {
			in.Base[f] = value()
			if r.IntN(2) == 0 {
				in.Local.Values[f] = value()
			}
			if r.IntN(2) == 0 {
				in.Remote.Values[f] = value()
			}
		}
		var p Policy
		for range r.IntN(4) {
			p.Rules = append(p.Rules, kinds[r.IntN(len(kinds))])
		}
		d := Resolve(context.Background(), in, p, nil)

		// Deterministic, whatever the order of Fields.
		shuffled := in
		shuffled.Fields = slices.Clone(fields)
		r.Shuffle(len(shuffled.Fields), func(i, j int) { shuffled.Fields[i], shuffled.Fields[j] = shuffled.Fields[j], shuffled.Fields[i] })
		if d2 := Resolve(context.Background(), shuffled, p, nil); !reflect.DeepEqual(d, d2) {
			t.Fatalf("case %d: not deterministic:\n%+v\n%+v", i, d, d2)
		}
		for _, f := range fields {
			l, lok := in.Local.Values[f]
			rv, rok := in.Remote.Values[f]
			lChanged := lok && !equal(l, in.Base[f])
			rChanged := rok && !equal(rv, in.Base[f])
			switch {
			case lChanged && !rChanged && !equal(d.Result[f], l):
				t.Fatalf("case %d: local-only change of %s lost: %+v", i, f, d)
			case rChanged && !lChanged && !equal(d.Result[f], rv):
				t.Fatalf("case %d: remote-only change of %s lost: %+v", i, f, d)
			case !lChanged && !rChanged && !equal(d.Result[f], in.Base[f]):
				t.Fatalf("case %d: unchanged %s changed: %+v", i, f, d)
			case lChanged && rChanged && !equal(l, rv) && !slices.Contains(d.Conflicts, f):
				t.Fatalf("case %d: conflict on %s missed", i, f)
			}
		}
		// Result holds no field none of the sides has; where the sides'
		// changes are disjoint, it is exactly their union over the base.
		for f := range d.Result {
			_, b := in.Base[f]
			_, l := in.Local.Values[f]
			_, rr := in.Remote.Values[f]
			if !b && !l && !rr {
				t.Fatalf("case %d: result field %s from nowhere", i, f)
			}
		}
		if len(d.Conflicts) == 0 {
			union := maps.Clone(in.Base)
			for f, v := range in.Local.Values {
				if !equal(v, in.Base[f]) {
					union[f] = v
				}
			}
			for f, v := range in.Remote.Values {
				if !equal(v, in.Base[f]) {
					union[f] = v
				}
			}
			for f := range union {
				if !equal(union[f], d.Result[f]) {
					t.Fatalf("case %d: disjoint changes did not merge to their union at %s: %+v", i, f, d)
				}
			}
		}
		// Once each side takes what the decision gives it, both hold the
		// result on every decided field.
		if d.Resolved() {
			local, remote := maps.Clone(in.Local.Values), maps.Clone(in.Remote.Values)
			for _, side := range []struct {
				vals Values
				to   Values
			}{{local, d.ToLocal}, {remote, d.ToRemote}} {
				for f := range d.Result {
					v, ok := side.vals[f]
					if !ok {
						v = in.Base[f]
					}
					if x, ok := side.to[f]; ok {
						v = x
					}
					if !equal(v, d.Result[f]) {
						t.Fatalf("case %d: a side does not converge on %s: %s, want %s (%+v)", i, f, v, d.Result[f], d)
					}
				}
			}
		}
		// A merged resolution takes the given values for every conflict.
		if len(d.Conflicts) > 0 {
			merged := Values{}
			for _, f := range d.Conflicts {
				merged[f] = json.RawMessage(`"merged"`)
			}
			m, err := Apply(in, ChoiceMerged, merged)
			if err != nil || !m.Resolved() {
				t.Fatalf("case %d: merged: %+v, %v", i, m, err)
			}
			for _, f := range d.Conflicts {
				if string(m.Result[f]) != `"merged"` {
					t.Fatalf("case %d: merged value of %s lost", i, f)
				}
			}
		}
		// Applying a resolution, then again on its result, changes nothing.
		for _, choice := range []string{ChoiceLocal, ChoiceRemote} {
			a, err := Apply(in, choice, nil)
			if err != nil {
				t.Fatal(err)
			}
			again := Input{System: "crm", Fields: fields, Base: a.Result, Local: Side{Values: a.Result}, Remote: Side{Values: a.Result}}
			b, err := Apply(again, choice, nil)
			if err != nil || len(b.Conflicts) != 0 || len(b.ToLocal) != 0 || len(b.ToRemote) != 0 || !reflect.DeepEqual(b.Result, a.Result) {
				t.Fatalf("case %d: applying %s twice is not a no-op: %+v, %v", i, choice, b, err)
			}
		}
	}
}

func FuzzResolve(f *testing.F) {
	f.Add(`{"a":"1"}`, `{"a":"2"}`, `{"a":3}`, int64(90))
	f.Add(`{}`, `{"a":null}`, `{"a":""}`, int64(-5))
	f.Add(`{"a":{"x":[1]}}`, `{"a":"{"}`, `{"a":[]}`, int64(0))
	f.Fuzz(func(t *testing.T, base, local, remote string, secs int64) {
		var in Input
		in.System = "crm"
		for _, x := range []struct {
			s   string
			dst *Values
		}{{base, &in.Base}, {local, &in.Local.Values}, {remote, &in.Remote.Values}} {
			if json.Unmarshal([]byte(x.s), x.dst) != nil {
				return
			}
		}
		in.Local.Time, in.Remote.Time = t0, t0.Add(time.Duration(secs)*time.Second)
		p := Policy{Rules: []Rule{{Kind: KindMerge}, {Kind: KindNewest}, {Kind: KindPreferUnlessBlank, Side: "crm"}, {Kind: KindManual}}}
		d := Resolve(context.Background(), in, p, nil)
		for _, c := range d.Conflicts {
			if _, ok := d.Fields[c]; !ok {
				t.Fatalf("conflict %s without a decision", c)
			}
		}
		if d2 := Resolve(context.Background(), in, p, nil); !reflect.DeepEqual(d, d2) {
			t.Fatal("not deterministic")
		}
	})
}

func keys(v Values) []string {
	if len(v) == 0 {
		return nil
	}
	return slices.Sorted(func(yield func(string) bool) {
		for k := range v {
			if !yield(k) {
				return
			}
		}
	})
}

func TestRuleCheck(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		rule Rule
		ok   bool
	}{
		{Rule{Kind: KindMerge}, true},
		{Rule{Kind: KindLLM}, true},
		{Rule{Kind: KindPrefer, Side: SideLocal}, true},
		{Rule{Kind: KindPreferUnlessBlank, Side: "crm"}, true},
		{Rule{Kind: KindPrefer, Side: "erp"}, false},
		{Rule{Kind: KindPrefer}, false},
		{Rule{Kind: "newst"}, false},
	} {
		if err := tc.rule.Check("crm"); (err == nil) != tc.ok {
			t.Errorf("%v.Check(crm) = %v, want ok %v", tc.rule, err, tc.ok)
		}
	}
}
