package salesforce

import (
	"encoding/json"
	"fmt"
	"maps"
	"math/big"
	"slices"
	"strings"
)

// Change Data Capture events as Salesforce delivers them, in both
// channels' shapes, for parser tests. Sources: "ChangeEventHeader Fields",
// "Change Event Body Fields", "Get Compound Fields in Change Events",
// "Data Differences in Event Fields" (Change Data Capture Developer
// Guide); "Differences Between Change Events Received with Streaming API
// vs. Pub/Sub API" (Streaming API Developer Guide); "Event
// Deserialization Considerations" (Pub/Sub API Developer Guide).

// Schema is an entity's change event schema: its fields in Avro order
// after ChangeEventHeader, which is always first. A compound field (an
// address, a person's Name) lists its components.
type Schema struct {
	Entity string
	Fields []SchemaField
}

// SchemaField is one field of a Schema.
type SchemaField struct {
	Name       string
	Components []string
}

// Change is one committed change of one or more records.
type Change struct {
	Entity    string
	RecordIDs []string // a key prefix with "*" for a field type conversion
	Type      string   // CREATE, UPDATE, DELETE, UNDELETE, GAP_*
	Origin    string   // changeOrigin
	TxKey     string
	Sequence  int
	// CommitTimestamp is in milliseconds; Salesforce's are whole seconds.
	CommitTimestamp int64
	CommitNumber    uint64
	ReplayID        int64
	// Values are the fields set: every non-empty field for a create, the
	// changed ones for an update, components as "Parent.Component"; nil
	// is null (cleared).
	Values map[string]any
	// Diffs are long text fields sent as a unified diff instead of their
	// value (an update of a text of 1,000 characters or more).
	Diffs map[string]string
}

// Avro returns the schema as GetSchema does: a record whose first field is
// ChangeEventHeader, every other field a union with null, a compound
// field's type a nested record (named once, referred to by name after).
func (s Schema) Avro() []byte {
	fields := []any{map[string]any{"name": "ChangeEventHeader", "type": "com.sforce.eventbus.ChangeEventHeader"}}
	defined := map[string]bool{}
	for _, f := range s.Fields {
		if f.Components == nil {
			fields = append(fields, map[string]any{"name": f.Name, "type": []any{"null", "string"}, "default": nil})
			continue
		}
		typeName := "Address"
		if !strings.HasSuffix(f.Name, "Address") {
			typeName = f.Name
		}
		var t any = typeName
		if !defined[typeName] {
			defined[typeName] = true
			var comps []any
			for _, c := range f.Components {
				comps = append(comps, map[string]any{"name": c, "type": []any{"null", "string"}, "default": nil})
			}
			t = map[string]any{"type": "record", "name": typeName, "fields": comps}
		}
		fields = append(fields, map[string]any{"name": f.Name, "type": []any{"null", t}, "default": nil})
	}
	b, _ := json.Marshal(map[string]any{"type": "record", "name": s.Entity + "ChangeEvent", "namespace": "com.sforce.eventbus", "fields": fields})
	return b
}

func (c Change) header() map[string]any {
	return map[string]any{
		"entityName": c.Entity, "recordIds": c.RecordIDs, "changeType": c.Type, "changeOrigin": c.Origin,
		"transactionKey": c.TxKey, "sequenceNumber": c.Sequence, "commitTimestamp": c.CommitTimestamp,
		"commitNumber": c.CommitNumber, "commitUser": "005RM000002dH1JYAU",
	}
}

func (c Change) changed() []string {
	var names []string
	if c.Type == "UPDATE" {
		for n := range c.Values {
			names = append(names, n)
		}
		for n := range c.Diffs {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names
}

// CometD returns the Streaming API message: only the fields set (no
// nulls on create, a cleared field as null on update), components nested
// under their compound field, a diff as {"diff": "..."}, and a header
// with changedFields but neither nulledFields nor diffFields.
func (c Change) CometD() []byte {
	h := c.header()
	h["changedFields"] = c.changed()
	payload := map[string]any{"ChangeEventHeader": h}
	if c.Type == "CREATE" || c.Type == "UPDATE" || c.Type == "UNDELETE" {
		for n, v := range c.Values {
			if v == nil && c.Type != "UPDATE" {
				continue
			}
			put(payload, n, v)
		}
		for n, d := range c.Diffs {
			payload[n] = map[string]any{"diff": d}
		}
	}
	b, _ := json.Marshal(map[string]any{"channel": "/data/" + c.Entity + "ChangeEvent", "data": map[string]any{
		"schema": "IeRuaY6cbI_HsV8Rv1Mc5g", "payload": payload, "event": map[string]any{"replayId": c.ReplayID}}})
	return b
}

// PubSub returns the Pub/Sub API event as a relay decodes it from Avro:
// every field of the schema, unchanged ones null (on update, even when
// the record holds a value), a diff as the field's text, and
// changedFields, nulledFields and diffFields as bitmaps over s.
func (c Change) PubSub(s Schema) []byte {
	h := c.header()
	var nulled, diffs []string
	for n, v := range c.Values {
		if v == nil && c.Type == "UPDATE" {
			nulled = append(nulled, n)
		}
	}
	for n := range c.Diffs {
		diffs = append(diffs, n)
	}
	h["changedFields"], h["nulledFields"], h["diffFields"] = s.bitmap(c.changed()), s.bitmap(nulled), s.bitmap(diffs)
	payload := map[string]any{"ChangeEventHeader": h}
	for _, f := range s.Fields {
		payload[f.Name] = nil
	}
	if c.Type != "DELETE" && !strings.HasPrefix(c.Type, "GAP_") {
		for n, v := range c.Values {
			put(payload, n, v)
		}
		for n, d := range c.Diffs {
			payload[n] = d
		}
	}
	b, _ := json.Marshal(map[string]any{"replayId": c.ReplayID, "schemaId": "IeRuaY6cbI_HsV8Rv1Mc5g", "payload": payload})
	return b
}

// bitmap encodes names as Salesforce does: "0x<hex>" with bit i for the
// field at Avro position i (ChangeEventHeader is 0), then "<pos>-0x<hex>"
// per compound field for its components.
func (s Schema) bitmap(names []string) []string {
	out := []string{}
	top := new(big.Int)
	nested := map[int]*big.Int{}
	for _, n := range names {
		parent, comp, dotted := strings.Cut(n, ".")
		for i, f := range s.Fields {
			if f.Name != parent {
				continue
			}
			if !dotted {
				top.SetBit(top, i+1, 1)
				continue
			}
			if nested[i+1] == nil {
				nested[i+1] = new(big.Int)
			}
			nested[i+1].SetBit(nested[i+1], slices.Index(f.Components, comp), 1)
		}
	}
	if top.Sign() > 0 || len(nested) > 0 {
		out = append(out, fmt.Sprintf("0x%X", top))
	}
	for _, pos := range slices.Sorted(maps.Keys(nested)) {
		out = append(out, fmt.Sprintf("%d-0x%X", pos, nested[pos]))
	}
	return out
}

// put sets name in payload, nesting "Parent.Component".
func put(payload map[string]any, name string, v any) {
	parent, comp, dotted := strings.Cut(name, ".")
	if !dotted {
		payload[name] = v
		return
	}
	m, _ := payload[parent].(map[string]any)
	if m == nil {
		m = map[string]any{}
		payload[parent] = m
	}
	m[comp] = v
}
