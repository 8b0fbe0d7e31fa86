package cdc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"
)

// ParseEnvelope reads back an event written by AppendEnvelope, with its
// message key, either of them with or without its schema block. Column
// order is kept. Fields cdcd did not write are
// ignored, so envelopes from Debezium's Postgres connector parse too.
func ParseEnvelope(key, value []byte) (Event, error) {
	var env struct {
		Before    json.RawMessage `json:"before"`
		After     json.RawMessage `json:"after"`
		Op        string          `json:"op"`
		Unchanged []string        `json:"unchanged"`
		Inbound   struct {
			DeliveryID string `json:"delivery_id"`
			Partial    bool   `json:"partial"`
			Refetch    bool   `json:"refetch"`
			OriginHint string `json:"origin_hint"`
		} `json:"inbound"`
		Source struct {
			Connector string `json:"connector"`
			TsMs      int64  `json:"ts_ms"`
			Schema    string `json:"schema"`
			Table     string `json:"table"`
			TxID      uint32 `json:"txId"`
			LSN       uint64 `json:"lsn"`
			Index     uint32 `json:"index"`
			Origin    string `json:"origin"`
		} `json:"source"`
	}
	key, value = unwrapSchema(key), unwrapSchema(value)
	if err := json.Unmarshal(value, &env); err != nil {
		return Event{}, fmt.Errorf("parse envelope: %w", err)
	}
	if len(env.Op) != 1 {
		return Event{}, fmt.Errorf("parse envelope: op %q", env.Op)
	}
	e := Event{
		Op:         Op(env.Op[0]),
		Origin:     env.Source.Origin,
		Schema:     env.Source.Schema,
		Table:      env.Source.Table,
		Unchanged:  env.Unchanged,
		CommitTime: time.UnixMilli(env.Source.TsMs).UTC(),
		Pos:        Position{CommitLSN: LSN(env.Source.LSN), Index: env.Source.Index},
		TxID:       env.Source.TxID,
		Source:     SourcePostgres,
		DeliveryID: env.Inbound.DeliveryID,
		Partial:    env.Inbound.Partial,
		Refetch:    env.Inbound.Refetch,
		OriginHint: env.Inbound.OriginHint,
	}
	switch e.Op {
	case OpCreate, OpUpdate, OpDelete, OpRead, OpTruncate:
	default:
		return Event{}, fmt.Errorf("parse envelope: unknown op %q", env.Op)
	}
	if c := env.Source.Connector; c != "" && c != "postgresql" {
		e.Source = c
	}
	var err error
	// json.Unmarshal checked the whole value is valid JSON, and copied
	// before and after: their rows are split without a decoder, and
	// their values are slices of those copies.
	if e.Before, err = splitRow(env.Before); err != nil {
		return Event{}, fmt.Errorf("parse envelope before: %w", err)
	}
	if e.After, err = splitRow(env.After); err != nil {
		return Event{}, fmt.Errorf("parse envelope after: %w", err)
	}
	e.After = dropUnavailable(e.After, e.Unchanged)
	if e.Key, err = ParseKey(key); err != nil {
		return Event{}, err
	}
	return e, nil
}

// ParseKey reads back a key written by AppendKey: the key columns in
// order, nil for null.
func ParseKey(key []byte) (Row, error) {
	r, err := parseRow(key)
	if err != nil {
		return nil, fmt.Errorf("parse message key: %w", err)
	}
	return r, nil
}

// dropUnavailable removes from after the unchanged columns, which it holds
// as Unavailable: in an Event they are absent, named in Unchanged.
func dropUnavailable(after Row, unchanged []string) Row {
	if len(unchanged) == 0 || after == nil {
		return after
	}
	kept := after[:0]
	for _, f := range after {
		if !slices.Contains(unchanged, f.Name) || string(f.Value) != unavailableJSON {
			kept = append(kept, f)
		}
	}
	return kept
}

const unavailableJSON = `"` + Unavailable + `"`

// parseRow reads a JSON object into a Row, keeping the column order; null
// or nothing is a nil Row.
func parseRow(b []byte) (Row, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || bytes.Equal(b, nullJSON) {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("not a JSON object")
	}
	row := Row{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		name, ok := tok.(string)
		if !ok {
			return nil, errors.New("object key is not a string")
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		row = append(row, Field{Name: name, Value: v})
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	return row, nil
}

// splitRow is parseRow for b known to be valid JSON: it finds each
// member's name and value by scanning, and the values are slices of b.
func splitRow(b []byte) (Row, error) {
	i := skipSpace(b, 0)
	if i == len(b) || bytes.Equal(bytes.TrimSpace(b), nullJSON) {
		return nil, nil
	}
	if b[i] != '{' {
		return nil, errors.New("not a JSON object")
	}
	row := Row{}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return row, nil
	}
	for i < len(b) {
		end := endOfValue(b, i) // the name, a string
		name, err := memberName(b[i:end])
		if err != nil {
			return nil, err
		}
		i = skipSpace(b, end)
		i = skipSpace(b, i+1) // the colon
		end = endOfValue(b, i)
		row = append(row, Field{Name: name, Value: json.RawMessage(b[i:end:end])})
		i = skipSpace(b, end)
		if i < len(b) && b[i] == '}' {
			return row, nil
		}
		i = skipSpace(b, i+1) // the comma
	}
	return nil, errors.New("unexpected end of JSON input")
}

// memberName returns the string a JSON string literal q holds.
func memberName(q []byte) (string, error) {
	if len(q) < 2 || q[0] != '"' {
		return "", errors.New("object key is not a string")
	}
	body := q[1 : len(q)-1]
	if bytes.IndexByte(body, '\\') < 0 && utf8.Valid(body) {
		return string(body), nil
	}
	var s string // escapes, or bytes encoding/json replaces
	if err := json.Unmarshal(q, &s); err != nil {
		return "", err
	}
	return s, nil
}

// skipSpace returns the index of the first byte of b at or after i that
// is not JSON whitespace.
func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// endOfValue returns the index just past the JSON value of valid JSON
// that starts at b[i].
func endOfValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		for j := i + 1; j < len(b); j++ {
			switch b[j] {
			case '\\':
				j++
			case '"':
				return j + 1
			}
		}
		return len(b)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				j = endOfValue(b, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			}
		}
		return len(b)
	}
	j := i
	for j < len(b) {
		switch b[j] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return j
		}
		j++
	}
	return j
}

// unwrapSchema returns the payload of a message written with its schema
// ({"schema":{...},"payload":...}), or b as it is.
func unwrapSchema(b []byte) []byte {
	if !bytes.HasPrefix(bytes.TrimLeft(b, " \t\r\n"), []byte(`{"schema"`)) {
		return b
	}
	var w struct {
		Schema  json.RawMessage `json:"schema"`
		Payload json.RawMessage `json:"payload"`
	}
	if json.Unmarshal(b, &w) != nil || len(w.Schema) == 0 || w.Schema[0] != '{' || w.Payload == nil {
		return b // a key or row whose first column is named "schema"
	}
	return w.Payload
}
