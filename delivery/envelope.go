package delivery

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
)

// envelope is the part of cdc.AppendEnvelope's output a replay needs.
type envelope struct {
	Before json.RawMessage `json:"before"`
	After  json.RawMessage `json:"after"`
	Source struct {
		Connector string  `json:"connector"`
		TsMs      int64   `json:"ts_ms"`
		TxID      uint32  `json:"txId"`
		LSN       uint64  `json:"lsn"`
		Index     uint32  `json:"index"`
		Origin    *string `json:"origin"`
	} `json:"source"`
	Unchanged []string `json:"unchanged"`
}

// eventOf rebuilds a dead letter's event from its envelope, keeping its
// event id.
func eventOf(dl *DeadLetter) (*cdc.Event, error) {
	e := &cdc.Event{Op: dl.Op}
	e.Schema, e.Table, _ = strings.Cut(dl.Table, ".")
	if e.Table == "" {
		e.Schema, e.Table = "", e.Schema
	}
	if dl.Key != "" {
		key, err := decodeRow([]byte(dl.Key))
		if err != nil {
			return nil, fmt.Errorf("decode dead letter %d key: %w", dl.ID, err)
		}
		e.Key = key
	}
	if len(bytes.TrimSpace(dl.Event)) > 0 {
		var env envelope
		if err := json.Unmarshal(dl.Event, &env); err != nil {
			return nil, fmt.Errorf("decode dead letter %d event: %w", dl.ID, err)
		}
		var err error
		if e.Before, err = decodeRow(env.Before); err != nil {
			return nil, fmt.Errorf("decode dead letter %d before: %w", dl.ID, err)
		}
		if e.After, err = decodeRow(env.After); err != nil {
			return nil, fmt.Errorf("decode dead letter %d after: %w", dl.ID, err)
		}
		e.Unchanged = env.Unchanged
		e.Source = cdc.SourcePostgres
		if c := env.Source.Connector; c != "" && c != "postgresql" {
			e.Source = c
		}
		if env.Source.Origin != nil {
			e.Origin = *env.Source.Origin
		}
		if env.Source.TsMs != 0 {
			e.CommitTime = time.UnixMilli(env.Source.TsMs)
		}
		e.TxID = env.Source.TxID
		e.Pos = cdc.Position{CommitLSN: cdc.LSN(env.Source.LSN), Index: env.Source.Index}
	}
	if e.ID() != dl.EventID {
		e.DeliveryID = dl.EventID
	}
	return e, nil
}

// decodeRow decodes a JSON object into a Row, keeping the column order.
// null decodes to a nil Row.
func decodeRow(raw []byte) (cdc.Row, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || cdc.IsNull(raw) {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errors.New("row is not a JSON object")
	}
	var row cdc.Row
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		name, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		row = append(row, cdc.Field{Name: name, Value: v})
	}
	return row, nil
}

// decodeFields decodes a dead letter's record fields; numbers stay exact
// (json.Number).
func decodeFields(raw json.RawMessage) (map[string]any, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var fields map[string]any
	if err := dec.Decode(&fields); err != nil {
		return nil, err
	}
	return fields, nil
}
