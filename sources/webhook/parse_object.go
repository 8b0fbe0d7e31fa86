package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cdcd-dev/cdcd/cdc"
)

// objectRow reads a JSON object's members into a Row in document order,
// each value as compact JSON. skip names members to leave out. A duplicate
// member name is an error.
func objectRow(b []byte, skip func(string) bool) (cdc.Row, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("not a JSON object")
	}
	var row cdc.Row
	var seen map[string]struct{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		name, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("member %q: %w", truncate([]byte(name)), err)
		}
		if skip != nil && skip(name) {
			continue
		}
		if seen == nil {
			seen = make(map[string]struct{})
		}
		if _, dup := seen[name]; dup {
			return nil, fmt.Errorf("member %q appears twice", truncate([]byte(name)))
		}
		seen[name] = struct{}{}
		var buf bytes.Buffer
		buf.Grow(len(raw))
		if err := json.Compact(&buf, raw); err != nil {
			return nil, err
		}
		row = append(row, cdc.Field{Name: name, Value: buf.Bytes()})
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err == nil {
		return nil, errors.New("data after the JSON object")
	}
	return row, nil
}

// idText returns a JSON number or string value as id text.
func idText(v json.RawMessage) (string, error) {
	var id jsonID
	if err := id.UnmarshalJSON(v); err != nil {
		return "", err
	}
	if id == "" {
		return "", errors.New("is empty")
	}
	return string(id), nil
}
