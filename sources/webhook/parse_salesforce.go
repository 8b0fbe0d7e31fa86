package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
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
	// AvroSchemas maps an entity (Account, Contact, Order__c) to the file
	// holding its change event's Avro schema, as the Pub/Sub API's
	// GetSchema returns it. Events relayed from the Pub/Sub API name their
	// changed, nulled and diff fields by bitmaps over that schema's field
	// order; an entity without a schema here has such events refused.
	AvroSchemas map[string]string `yaml:"avro_schemas"`
}

// Validate reports every problem, each prefixed with its field path.
func (c *SalesforceParserConfig) Validate() error {
	_, err := c.schemas()
	return err
}

func (c *SalesforceParserConfig) schemas() (map[string]*avroRecord, error) {
	out := map[string]*avroRecord{}
	var errs []error
	for _, entity := range slices.Sorted(maps.Keys(c.AvroSchemas)) {
		path := c.AvroSchemas[entity]
		b, err := os.ReadFile(path)
		if err == nil {
			out[entity], err = parseAvroSchema(b)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("avro_schemas.%s: %w", entity, err))
		}
	}
	return out, errors.Join(errs...)
}

// SalesforceParser reads Change Data Capture events relayed as JSON, in
// either shape Salesforce delivers them:
//
//   - Streaming API (CometD): a message {"data":{"payload":{...},
//     "event":{"replayId":n}}}, its data, or the bare payload. An update's
//     body holds only the changed fields (null for a cleared one); a long
//     text sent as a diff is {"diff": "..."}; changedFields may be absent.
//   - Pub/Sub API, decoded from Avro by the relay: {"replayId":n,
//     "payload":{...}} or the bare payload. The body holds every field,
//     unchanged ones null; changedFields, nulledFields and diffFields are
//     names, or bitmaps decoded with the entity's schema (AvroSchemas).
//
// ("Differences Between Change Events Received with Streaming API vs.
// Pub/Sub API", Streaming API Developer Guide; "Data Differences in Event
// Fields" and "Get Compound Fields in Change Events", Change Data Capture
// Developer Guide.)
//
// Each record id gives one Change with Table = entityName and OriginHint
// = changeOrigin. A compound field's components are named
// "Parent.Component" ("MailingAddress.City") in every change, nested
// object or not. CREATE is OpCreate with every field sent. UPDATE is
// OpUpdate, Partial, with the changed fields (null for nulled ones); a
// field sent as a diff is left out and sets Refetch, as does an update
// naming no changed fields. DELETE is OpDelete. UNDELETE is OpCreate with
// Refetch. GAP_* events carry no data: Refetch with the op they stand
// for. A wildcard record id ("001*", a field type conversion) or a
// GAP_OVERFLOW names no record: its Change has a nil Key and Refetch (re-
// read the whole entity).
//
// Order: CommitTime is commitTimestamp (whole seconds in practice), and
// DeliveryID "<commitNumber>/<sequenceNumber>/<transactionKey>/<recordId>"
// with both numbers zero-padded, so that changes of one second compare in
// commit order by DeliveryID (commitNumber increases with each commit; the
// replay id stands in when an event lacks it).
type SalesforceParser struct {
	system  string
	schemas map[string]*avroRecord
}

// NewSalesforceParser validates cfg, reads its schemas and returns its
// parser.
func NewSalesforceParser(cfg SalesforceParserConfig) (*SalesforceParser, error) {
	schemas, err := cfg.schemas()
	if err != nil {
		return nil, err
	}
	sys := cfg.System
	if sys == "" {
		sys = "salesforce"
	}
	return &SalesforceParser{system: sys, schemas: schemas}, nil
}

type salesforceHeader struct {
	EntityName     string   `json:"entityName"`
	RecordIDs      []string `json:"recordIds"`
	ChangeType     string   `json:"changeType"`
	ChangeOrigin   string   `json:"changeOrigin"`
	TransactionKey string   `json:"transactionKey"`
	// Avro longs: numbers, or strings from relays that decode them so.
	SequenceNumber  jsonID    `json:"sequenceNumber"`
	CommitTimestamp jsonID    `json:"commitTimestamp"`
	CommitNumber    jsonID    `json:"commitNumber"`
	ChangedFields   *[]string `json:"changedFields"`
	NulledFields    []string  `json:"nulledFields"`
	DiffFields      []string  `json:"diffFields"`
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

// salesforceEnvelope is any of the shapes an event arrives in.
type salesforceEnvelope struct {
	Header   *salesforceHeader `json:"ChangeEventHeader"`
	Payload  json.RawMessage   `json:"payload"`
	ReplayID json.RawMessage   `json:"replayId"`
	Event    struct {
		ReplayID json.RawMessage `json:"replayId"`
	} `json:"event"`
	Data *struct {
		Payload json.RawMessage `json:"payload"`
		Event   struct {
			ReplayID json.RawMessage `json:"replayId"`
		} `json:"event"`
	} `json:"data"`
}

func (p *SalesforceParser) appendEvent(out []Change, item json.RawMessage) ([]Change, error) {
	var env salesforceEnvelope
	if err := json.Unmarshal(item, &env); err != nil {
		return out, jsonError("event", err)
	}
	payload, replay, where := item, env.ReplayID, "event"
	switch {
	case env.Header != nil:
	case env.Data != nil && len(env.Data.Payload) > 0:
		payload, replay, where = env.Data.Payload, env.Data.Event.ReplayID, "data.payload"
	case len(env.Payload) > 0:
		payload, where = env.Payload, "payload"
		if len(env.Event.ReplayID) > 0 {
			replay = env.Event.ReplayID
		}
	}
	if where != "event" {
		env = salesforceEnvelope{}
		if err := json.Unmarshal(payload, &env); err != nil {
			return out, jsonError(where, err)
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
	case commitMillis(h) <= 0:
		return out, errors.New("no commitTimestamp")
	case len(h.RecordIDs) == 0 && h.ChangeType != "GAP_OVERFLOW":
		return out, errors.New("no recordIds")
	}
	if err := p.decodeBitmaps(h); err != nil {
		return out, err
	}
	c := Change{
		Event: cdc.Event{
			Op:         op,
			Source:     p.system,
			Schema:     p.system,
			Table:      h.EntityName,
			CommitTime: time.UnixMilli(commitMillis(h)).UTC(),
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
		if h.ChangeType == "UPDATE" {
			c.Partial = true
			c.After, c.Refetch = salesforceChanged(all, h)
		} else {
			c.After = flattenCompound(all)
		}
	}
	base := salesforceOrder(h, replay) + "/" + h.TransactionKey + "/"
	if len(h.RecordIDs) == 0 {
		c.DeliveryID, c.Refetch, c.After, c.Partial = base, true, nil, false
		return append(out, c), nil
	}
	for _, id := range h.RecordIDs {
		if id == "" {
			return out, errors.New("empty record id")
		}
		rc := c
		if strings.HasSuffix(id, "*") {
			// A key prefix: every record of the entity may have changed.
			rc.Refetch, rc.After, rc.Partial = true, nil, false
		} else {
			rc.Key = keyRow(id)
		}
		rc.DeliveryID = base + id
		out = append(out, rc)
	}
	return out, nil
}

// decodeBitmaps replaces bitmap field lists by field names, with the
// schema configured for the entity.
func (p *SalesforceParser) decodeBitmaps(h *salesforceHeader) error {
	lists := []*[]string{&h.NulledFields, &h.DiffFields}
	if h.ChangedFields != nil {
		lists = append(lists, h.ChangedFields)
	}
	for _, l := range lists {
		if !isBitmap(*l) {
			continue
		}
		schema := p.schemas[h.EntityName]
		if schema == nil {
			return fmt.Errorf("%s event names its fields by bitmap (Pub/Sub API) and no Avro schema is configured for %s: "+
				"save the schema GetSchema returns for the event's schema id and name it in webhook.avro_schemas.%s, or decode the bitmaps in the relay",
				truncate([]byte(h.EntityName)), truncate([]byte(h.EntityName)), truncate([]byte(h.EntityName)))
		}
		names, err := schema.decodeBitmap(*l)
		if err != nil {
			return fmt.Errorf("%s event: %w; the schema in webhook.avro_schemas.%s may be outdated: save the one for the event's schema id",
				truncate([]byte(h.EntityName)), err, truncate([]byte(h.EntityName)))
		}
		*l = names
	}
	return nil
}

// salesforceOrder is the zero-padded commitNumber (else the replay id)
// and sequenceNumber, so that text order is commit order.
func salesforceOrder(h *salesforceHeader, replay json.RawMessage) string {
	n, _ := strconv.ParseUint(string(h.CommitNumber), 10, 64)
	if n == 0 && len(replay) > 0 {
		var s jsonID
		if s.UnmarshalJSON(replay) == nil {
			n, _ = strconv.ParseUint(string(s), 10, 64)
		}
	}
	seq, _ := strconv.ParseUint(string(h.SequenceNumber), 10, 32)
	return fmt.Sprintf("%020d/%010d", n, seq)
}

// commitMillis is commitTimestamp; 0 when absent or not a time.
func commitMillis(h *salesforceHeader) int64 {
	ms, err := strconv.ParseInt(string(h.CommitTimestamp), 10, 64)
	if err != nil || ms > 1<<50 {
		return 0
	}
	return ms
}

// salesforceChanged picks the changed fields of an update from all. With
// changedFields absent (Streaming API), every field sent changed. A field
// sent as a diff, named in diffFields or given as {"diff": ...}, is left
// out, and so is a changed field the body lacks; refetch reports either.
func salesforceChanged(all cdc.Row, h *salesforceHeader) (after cdc.Row, refetch bool) {
	if h.ChangedFields == nil {
		after = make(cdc.Row, 0, len(all))
		for _, f := range flattenCompound(all) {
			if isDiff(f.Value) || slices.Contains(h.DiffFields, f.Name) {
				refetch = true
				continue
			}
			after = append(after, f)
		}
		return after, refetch
	}
	changed := *h.ChangedFields
	if len(changed) == 0 {
		return cdc.Row{}, true
	}
	after = make(cdc.Row, 0, len(changed))
	for _, name := range changed {
		switch {
		case slices.Contains(h.DiffFields, name):
			refetch = true
		case slices.Contains(h.NulledFields, name):
			after = append(after, cdc.Field{Name: name, Value: json.RawMessage("null")})
		default:
			v, ok := salesforceField(all, name)
			if !ok || isDiff(v) {
				refetch = true
				continue
			}
			after = append(after, cdc.Field{Name: name, Value: v})
		}
	}
	for _, name := range h.NulledFields {
		if !slices.Contains(changed, name) {
			after = append(after, cdc.Field{Name: name, Value: json.RawMessage("null")})
		}
	}
	return after, refetch
}

// isDiff reports a Streaming API diff value: {"diff": "<unified diff>"}.
func isDiff(v json.RawMessage) bool {
	if len(v) == 0 || v[0] != '{' {
		return false
	}
	var o map[string]json.RawMessage
	if json.Unmarshal(v, &o) != nil {
		return false
	}
	_, ok := o["diff"]
	return ok && len(o) == 1
}

// flattenCompound names the components of compound fields (nested
// objects) "Parent.Component"; a diff value is kept whole for the caller.
func flattenCompound(all cdc.Row) cdc.Row {
	out := make(cdc.Row, 0, len(all))
	for _, f := range all {
		if len(f.Value) == 0 || f.Value[0] != '{' || isDiff(f.Value) {
			out = append(out, f)
			continue
		}
		sub, err := objectRow(f.Value, nil)
		if err != nil {
			out = append(out, f)
			continue
		}
		for _, s := range sub {
			out = append(out, cdc.Field{Name: f.Name + "." + s.Name, Value: s.Value})
		}
	}
	return out
}

// salesforceField returns the value of name, "Parent.Child" reaching into
// a compound field; ok is false when the body does not hold it.
func salesforceField(all cdc.Row, name string) (json.RawMessage, bool) {
	if v, ok := all.Get(name); ok {
		return v, true
	}
	parent, child, compound := strings.Cut(name, ".")
	if !compound {
		return nil, false
	}
	v, ok := all.Get(parent)
	if !ok {
		return nil, false
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(v, &obj) != nil {
		return nil, false
	}
	cv, ok := obj[child]
	return cv, ok
}
