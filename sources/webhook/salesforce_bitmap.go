package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Salesforce's Pub/Sub API sends changedFields, diffFields and nulledFields
// as bitmaps, not names: the first element ("0x650004E0") has a bit per
// field of the change event's Avro schema, bit i (counting from the least
// significant) for the field at position i; each further element
// ("4-0x10") is a bitmap of the component fields of the compound field at
// position 4. Decoding them needs the schema's field order, which the
// event does not carry. ("Event Deserialization Considerations", Pub/Sub
// API Developer Guide,
// https://developer.salesforce.com/docs/platform/pub-sub-api/guide/event-deserialization-considerations.html;
// the reference decoder is forcedotcom/pub-sub-api's
// ChangeEventHeaderUtility.py.)

// avroRecord is the field order of an Avro record schema; a field whose
// type is a record (a compound field: an address, a name) has its
// components in sub.
type avroRecord struct {
	fields []avroField
}

type avroField struct {
	name string
	sub  *avroRecord
}

// parseAvroSchema reads the field order of a change event's Avro schema
// (JSON, as the Pub/Sub API's GetSchema or the REST resource
// /services/data/vXX.X/event/eventSchema/{schemaId} return it).
func parseAvroSchema(b []byte) (*avroRecord, error) {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("not a JSON Avro schema: %w", err)
	}
	named := map[string]*avroRecord{}
	r, err := avroRecordOf(v, "", named)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, errors.New(`the schema is not a record ("type": "record" with "fields")`)
	}
	return r, nil
}

// avroRecordOf returns the record that the Avro type v is, holds (a union
// member) or names; nil for any other type.
func avroRecordOf(v any, ns string, named map[string]*avroRecord) (*avroRecord, error) {
	switch t := v.(type) {
	case string:
		if r, ok := named[t]; ok {
			return r, nil
		}
		return named[ns+"."+t], nil
	case []any:
		for _, m := range t {
			r, err := avroRecordOf(m, ns, named)
			if r != nil || err != nil {
				return r, err
			}
		}
		return nil, nil
	case map[string]any:
		if t["type"] != "record" {
			return nil, nil
		}
		if s, ok := t["namespace"].(string); ok {
			ns = s
		}
		r := &avroRecord{}
		if name, ok := t["name"].(string); ok {
			named[name] = r
			if ns != "" && !strings.Contains(name, ".") {
				named[ns+"."+name] = r
			}
		}
		fields, ok := t["fields"].([]any)
		if !ok {
			return nil, errors.New(`a record without "fields"`)
		}
		for i, f := range fields {
			fm, _ := f.(map[string]any)
			name, _ := fm["name"].(string)
			if name == "" {
				return nil, fmt.Errorf("field %d has no name", i)
			}
			sub, err := avroRecordOf(fm["type"], ns, named)
			if err != nil {
				return nil, fmt.Errorf("field %s: %w", name, err)
			}
			r.fields = append(r.fields, avroField{name: name, sub: sub})
		}
		return r, nil
	}
	return nil, nil
}

var (
	topBitmap    = regexp.MustCompile(`^0[xX][0-9a-fA-F]+$`)
	nestedBitmap = regexp.MustCompile(`^([0-9]+)-0[xX]([0-9a-fA-F]+)$`)
)

// isBitmap reports whether a header field list holds bitmaps rather than
// field names.
func isBitmap(list []string) bool {
	for _, s := range list {
		if topBitmap.MatchString(s) || nestedBitmap.MatchString(s) {
			return true
		}
	}
	return false
}

// decodeBitmap turns a bitmap field list into field names, compound
// components as "Parent.Component". A bit past the schema's fields means
// the event was encoded with another schema: an error, never a guess.
func (r *avroRecord) decodeBitmap(list []string) ([]string, error) {
	var names []string
	for _, s := range list {
		if topBitmap.MatchString(s) {
			got, err := r.bits(s[2:], "")
			if err != nil {
				return nil, err
			}
			names = append(names, got...)
			continue
		}
		m := nestedBitmap.FindStringSubmatch(s)
		if m == nil {
			return nil, fmt.Errorf("%q is neither a field bitmap nor a compound field bitmap", truncate([]byte(s)))
		}
		pos, err := strconv.Atoi(m[1])
		if err != nil || pos >= len(r.fields) {
			return nil, fmt.Errorf("bitmap %q names field %s of a schema with %d fields", s, m[1], len(r.fields))
		}
		parent := r.fields[pos]
		if parent.sub == nil {
			return nil, fmt.Errorf("bitmap %q: field %s is not a compound field in the schema", s, parent.name)
		}
		got, err := parent.sub.bits(m[2], parent.name+".")
		if err != nil {
			return nil, err
		}
		names = append(names, got...)
	}
	return names, nil
}

// bits returns the names of the fields whose bits are set in hex.
func (r *avroRecord) bits(hex, prefix string) ([]string, error) {
	var names []string
	n := len(hex)
	for k := n - 1; k >= 0; k-- {
		d, err := strconv.ParseUint(hex[k:k+1], 16, 8)
		if err != nil {
			return nil, fmt.Errorf("bitmap 0x%s: %w", truncate([]byte(hex)), err)
		}
		for b := range 4 {
			if d&(1<<b) == 0 {
				continue
			}
			i := (n-1-k)*4 + b
			if i >= len(r.fields) {
				return nil, fmt.Errorf("bitmap 0x%s sets bit %d, past the %d fields of the configured schema", truncate([]byte(hex)), i, len(r.fields))
			}
			names = append(names, prefix+r.fields[i].name)
		}
	}
	return names, nil
}
