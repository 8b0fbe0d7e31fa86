package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
)

// MaxJSONEvents bounds the events of one generic JSON delivery.
const MaxJSONEvents = 1000

// JSONParserConfig maps a vendor's JSON events onto changes. Paths are
// dot-separated member names, with decimal indexes into arrays
// ("data.object.id", "items.0.sku"); the empty path is the event itself.
type JSONParserConfig struct {
	// System is Source and Schema of the changes; required.
	System string `yaml:"system"`
	// Table is the vendor entity the events describe; required.
	Table string `yaml:"table"`
	// Events is the path of an array of events; empty means the body is one
	// event, or an array of events.
	Events string `yaml:"events"`
	// ID is the path of the record's id (a string or an integer); required.
	ID string `yaml:"id"`
	// Op is the path of the operation; Ops maps its values to "c", "u" or
	// "d". Without Op every event is an update.
	Op  string            `yaml:"op"`
	Ops map[string]string `yaml:"ops"`
	// OccurredAt is the path of when the change happened: an RFC 3339
	// string, or a number in the unit OccurredAtUnit ("s" default, or "ms").
	OccurredAt     string `yaml:"occurred_at"`
	OccurredAtUnit string `yaml:"occurred_at_unit"`
	// DeliveryID is the path of an id stable across retries; required
	// unless the Verifier supplies one (the HTTP layer then sets it).
	DeliveryID string `yaml:"delivery_id"`
	// Fields become After, in this order. A field whose path is absent is
	// left out and the Change is Partial.
	Fields []JSONField `yaml:"fields"`
}

// JSONField names one column and where its value is.
type JSONField struct {
	Name string `yaml:"name"`
	Path string `yaml:"path"`
}

// Validate reports every problem, each prefixed with its field path.
func (c *JSONParserConfig) Validate() error {
	var errs []error
	if c.System == "" {
		errs = append(errs, errors.New("system: required"))
	}
	if c.Table == "" {
		errs = append(errs, errors.New("table: required"))
	}
	if c.ID == "" {
		errs = append(errs, errors.New("id: required"))
	}
	if c.Op != "" && len(c.Ops) == 0 {
		errs = append(errs, errors.New("ops: required with op"))
	}
	for k, v := range c.Ops {
		if v != "c" && v != "u" && v != "d" {
			errs = append(errs, fmt.Errorf("ops.%s: %q is not c, u or d", k, v))
		}
	}
	switch c.OccurredAtUnit {
	case "", "s", "ms":
	default:
		errs = append(errs, fmt.Errorf("occurred_at_unit: %q is not s or ms", c.OccurredAtUnit))
	}
	seen := map[string]bool{}
	for i, f := range c.Fields {
		switch {
		case f.Name == "":
			errs = append(errs, fmt.Errorf("fields[%d].name: required", i))
		case seen[f.Name]:
			errs = append(errs, fmt.Errorf("fields[%d].name: %q appears twice", i, f.Name))
		}
		seen[f.Name] = true
	}
	return errors.Join(errs...)
}

// JSONParser reads vendor JSON through a JSONParserConfig mapping.
type JSONParser struct {
	cfg JSONParserConfig
}

// NewJSONParser validates cfg and returns its parser.
func NewJSONParser(cfg JSONParserConfig) (*JSONParser, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &JSONParser{cfg: cfg}, nil
}

// Parse implements Parser.
func (p *JSONParser) Parse(r *Request) ([]Change, error) {
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, jsonError("delivery", err)
	}
	if dec.More() {
		return nil, errors.New("delivery: data after the JSON value")
	}
	if p.cfg.Events != "" {
		v, ok := lookup(doc, p.cfg.Events)
		if !ok {
			return nil, fmt.Errorf("delivery: no %q", p.cfg.Events)
		}
		doc = v
	}
	events, ok := doc.([]any)
	if !ok {
		events = []any{doc}
	}
	if len(events) > MaxJSONEvents {
		return nil, fmt.Errorf("delivery: %d events, at most %d allowed", len(events), MaxJSONEvents)
	}
	out := make([]Change, 0, len(events))
	for i, ev := range events {
		c, err := p.change(ev)
		if err != nil {
			return nil, fmt.Errorf("delivery: event[%d]: %w", i, err)
		}
		out = append(out, c)
	}
	return out, nil
}

func (p *JSONParser) change(ev any) (Change, error) {
	cfg := &p.cfg
	c := Change{Event: cdc.Event{Op: cdc.OpUpdate, Source: cfg.System, Schema: cfg.System, Table: cfg.Table}}
	id, err := scalarText(ev, cfg.ID)
	if err != nil || id == "" {
		return c, fmt.Errorf("id %q: %w", cfg.ID, errOr(err, "is empty"))
	}
	c.Key = keyRow(id)
	if cfg.Op != "" {
		op, err := scalarText(ev, cfg.Op)
		if err != nil {
			return c, fmt.Errorf("op %q: %w", cfg.Op, err)
		}
		m, ok := cfg.Ops[op]
		if !ok {
			return c, fmt.Errorf("op %q: value %q is not mapped in ops", cfg.Op, truncate([]byte(op)))
		}
		c.Op, c.Kind = cdc.Op(m[0]), op
	}
	if cfg.OccurredAt != "" {
		if c.CommitTime, err = p.occurredAt(ev); err != nil {
			return c, fmt.Errorf("occurred_at %q: %w", cfg.OccurredAt, err)
		}
	}
	if cfg.DeliveryID != "" {
		if c.DeliveryID, err = scalarText(ev, cfg.DeliveryID); err != nil || c.DeliveryID == "" {
			return c, fmt.Errorf("delivery_id %q: %w", cfg.DeliveryID, errOr(err, "is empty"))
		}
	}
	if c.Op == cdc.OpDelete {
		return c, nil
	}
	for _, f := range cfg.Fields {
		v, ok := lookup(ev, f.Path)
		if !ok {
			c.Partial = true
			continue
		}
		b, err := marshalValue(v)
		if err != nil {
			return c, fmt.Errorf("field %s: %w", f.Name, err)
		}
		c.After = append(c.After, cdc.Field{Name: f.Name, Value: b})
	}
	return c, nil
}

func (p *JSONParser) occurredAt(ev any) (time.Time, error) {
	v, ok := lookup(ev, p.cfg.OccurredAt)
	if !ok {
		return time.Time{}, errors.New("is absent")
	}
	switch v := v.(type) {
	case string:
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time", truncate([]byte(v)))
		}
		return t.UTC(), nil
	case json.Number:
		n, err := strconv.ParseInt(v.String(), 10, 64)
		if err != nil || n < 0 || n > 1<<50 {
			return time.Time{}, fmt.Errorf("%s is not a Unix time", truncate([]byte(v.String())))
		}
		if p.cfg.OccurredAtUnit == "ms" {
			return time.UnixMilli(n).UTC(), nil
		}
		return time.Unix(n, 0).UTC(), nil
	}
	return time.Time{}, errors.New("is neither a string nor a number")
}

// lookup follows a dot path through decoded JSON.
func lookup(v any, path string) (any, bool) {
	if path == "" {
		return v, true
	}
	for part := range strings.SplitSeq(path, ".") {
		switch t := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = t[part]; !ok {
				return nil, false
			}
		case []any:
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 || i >= len(t) {
				return nil, false
			}
			v = t[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// scalarText returns a string or number at path as text.
func scalarText(v any, path string) (string, error) {
	s, ok := lookup(v, path)
	if !ok {
		return "", errors.New("is absent")
	}
	switch s := s.(type) {
	case string:
		return s, nil
	case json.Number:
		return s.String(), nil
	}
	return "", errors.New("is neither a string nor a number")
}

func errOr(err error, msg string) error {
	if err != nil {
		return err
	}
	return errors.New(msg)
}

// marshalValue encodes v as compact JSON without HTML escaping, as sent.
func marshalValue(v any) (json.RawMessage, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
