package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
)

// MaxSalesforceChanges bounds the changes one delivery may expand to.
const MaxSalesforceChanges = 2000

// SalesforceParserConfig configures a SalesforceParser.
type SalesforceParserConfig struct {
	// System is Source and Schema of the changes; default "salesforce".
	System string `yaml:"system"`
}

// Validate reports every problem, each prefixed with its field path.
func (c *SalesforceParserConfig) Validate() error { return nil }

// SalesforceParser reads Change Data Capture events relayed as JSON: one
// event payload (with ChangeEventHeader), a CometD message
// ({"data":{"payload":{...}}}), or an array of either. Each record id gives
// one Change with Table = entityName, CommitTime = commitTimestamp,
// OriginHint = changeOrigin and DeliveryID
// "<transactionKey>/<sequenceNumber>/<recordId>".
//
// CREATE is OpCreate with every field sent. UPDATE is OpUpdate, Partial,
// with the fields named in changedFields and nulledFields (null); a
// compound field's part keeps its dotted name ("BillingAddress.City").
// Fields sent as diffs (diffFields) are left out and set Refetch. DELETE is
// OpDelete. UNDELETE is OpCreate with Refetch. GAP_* events carry no data:
// Refetch with the op they stand for; GAP_OVERFLOW names no records, so its
// Change has a nil Key (re-read the whole entity).
type SalesforceParser struct {
	system string
}

// NewSalesforceParser validates cfg and returns its parser.
func NewSalesforceParser(cfg SalesforceParserConfig) (*SalesforceParser, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	sys := cfg.System
	if sys == "" {
		sys = "salesforce"
	}
	return &SalesforceParser{system: sys}, nil
}

type salesforceHeader struct {
	EntityName      string   `json:"entityName"`
	RecordIDs       []string `json:"recordIds"`
	ChangeType      string   `json:"changeType"`
	ChangeOrigin    string   `json:"changeOrigin"`
	TransactionKey  string   `json:"transactionKey"`
	SequenceNumber  int64    `json:"sequenceNumber"`
	CommitTimestamp int64    `json:"commitTimestamp"`
	ChangedFields   []string `json:"changedFields"`
	NulledFields    []string `json:"nulledFields"`
	DiffFields      []string `json:"diffFields"`
}

var salesforceOps = map[string]cdc.Op{
	"CREATE": cdc.OpCreate, "UPDATE": cdc.OpUpdate, "DELETE": cdc.OpDelete, "UNDELETE": cdc.OpCreate,
	"GAP_CREATE": cdc.OpCreate, "GAP_UPDATE": cdc.OpUpdate, "GAP_DELETE": cdc.OpDelete,
	"GAP_UNDELETE": cdc.OpCreate, "GAP_OVERFLOW": cdc.OpUpdate,
}

// Parse implements Parser.
func (p *SalesforceParser) Parse(r *Request) ([]Change, error) {
	body := bytes.TrimSpace(r.Body)
	items := []json.RawMessage{body}
	array := len(body) > 0 && body[0] == '['
	if array {
		if err := json.Unmarshal(body, &items); err != nil {
			return nil, jsonError("salesforce delivery", err)
		}
	}
	var out []Change
	for i, item := range items {
		var err error
		if out, err = p.appendEvent(out, item); err != nil {
			if !array {
				return nil, fmt.Errorf("salesforce delivery: %w", err)
			}
			return nil, fmt.Errorf("salesforce delivery: event[%d]: %w", i, err)
		}
		if len(out) > MaxSalesforceChanges {
			return nil, fmt.Errorf("salesforce delivery: more than %d record changes", MaxSalesforceChanges)
		}
	}
	return out, nil
}

func (p *SalesforceParser) appendEvent(out []Change, item json.RawMessage) ([]Change, error) {
	var env struct {
		Header *salesforceHeader `json:"ChangeEventHeader"`
		Data   struct {
			Payload json.RawMessage `json:"payload"`
		} `json:"data"`
	}
	if err := json.Unmarshal(item, &env); err != nil {
		return out, jsonError("event", err)
	}
	payload := item
	if env.Header == nil && len(env.Data.Payload) > 0 {
		payload = env.Data.Payload
		if err := json.Unmarshal(payload, &env); err != nil {
			return out, jsonError("data.payload", err)
		}
	}
	h := env.Header
	if h == nil {
		return out, errors.New("no ChangeEventHeader")
	}
	op, ok := salesforceOps[h.ChangeType]
	switch {
	case !ok:
		return out, fmt.Errorf("unsupported changeType %q", truncate([]byte(h.ChangeType)))
	case h.EntityName == "":
		return out, errors.New("no entityName")
	case h.TransactionKey == "":
		return out, errors.New("no transactionKey")
	case h.CommitTimestamp <= 0:
		return out, errors.New("no commitTimestamp")
	case len(h.RecordIDs) == 0 && h.ChangeType != "GAP_OVERFLOW":
		return out, errors.New("no recordIds")
	}
	c := Change{
		Event: cdc.Event{
			Op:         op,
			Source:     p.system,
			Schema:     p.system,
			Table:      h.EntityName,
			CommitTime: time.UnixMilli(h.CommitTimestamp).UTC(),
			OriginHint: h.ChangeOrigin,
			Refetch:    strings.HasPrefix(h.ChangeType, "GAP_") || h.ChangeType == "UNDELETE",
		},
		Kind: h.ChangeType,
	}
	if !c.Refetch && op != cdc.OpDelete {
		all, err := objectRow(payload, func(n string) bool { return n == "ChangeEventHeader" })
		if err != nil {
			return out, fmt.Errorf("payload: %w", err)
		}
		c.After = all
		if h.ChangeType == "UPDATE" {
			c.Partial = true
			c.After, c.Refetch = salesforceChanged(all, h)
		}
	}
	base := h.TransactionKey + "/" + strconv.FormatInt(h.SequenceNumber, 10) + "/"
	if len(h.RecordIDs) == 0 {
		c.DeliveryID = base
		return append(out, c), nil
	}
	for _, id := range h.RecordIDs {
		if id == "" {
			return out, errors.New("empty record id")
		}
		rc := c
		if !strings.Contains(id, "*") {
			rc.Key = keyRow(id)
		}
		rc.DeliveryID = base + id
		out = append(out, rc)
	}
	return out, nil
}

// salesforceChanged picks the changed and nulled fields from all, leaving
// out diff-encoded fields; refetch reports that some were left out.
func salesforceChanged(all cdc.Row, h *salesforceHeader) (after cdc.Row, refetch bool) {
	after = make(cdc.Row, 0, len(h.ChangedFields)+len(h.NulledFields))
	for _, name := range h.ChangedFields {
		if slices.Contains(h.DiffFields, name) {
			refetch = true
			continue
		}
		if slices.Contains(h.NulledFields, name) {
			continue
		}
		after = append(after, cdc.Field{Name: name, Value: salesforceField(all, name)})
	}
	for _, name := range h.NulledFields {
		after = append(after, cdc.Field{Name: name, Value: json.RawMessage("null")})
	}
	return after, refetch
}

// salesforceField returns the value of name, "Parent.Child" reaching into
// a compound field; absent is null.
func salesforceField(all cdc.Row, name string) json.RawMessage {
	parent, child, compound := strings.Cut(name, ".")
	v, ok := all.Get(parent)
	if !ok {
		return json.RawMessage("null")
	}
	if !compound {
		return v
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(v, &obj) != nil {
		return json.RawMessage("null")
	}
	if cv, ok := obj[child]; ok {
		return cv
	}
	return json.RawMessage("null")
}
