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

// MaxHubSpotEvents is the most events HubSpot puts in one request.
const MaxHubSpotEvents = 100

// HubSpotParserConfig configures a HubSpotParser.
type HubSpotParserConfig struct {
	// System is Source and Schema of the changes; default "hubspot".
	System string `yaml:"system"`
}

// Validate reports every problem, each prefixed with its field path.
func (c *HubSpotParserConfig) Validate() error { return nil }

// HubSpotParser reads HubSpot webhook deliveries: a JSON array of up to 100
// contact, company and deal events. Supported subscription types are
// <object>.creation and .restore (OpCreate, Refetch: no properties are
// sent), .propertyChange (OpUpdate, Partial, After holds the one property),
// .deletion and .privacyDeletion (OpDelete) and .merge (see Change.MergedInto),
// in the legacy form (contact.creation) and the generic one that apps on
// HubSpot's current platform receive (object.creation, with objectTypeId
// 0-1, 0-2 or 0-3). Any other type fails the delivery, naming the type:
// unsubscribe from it.
//
// HubSpot neither orders nor deduplicates events; CommitTime is occurredAt
// and DeliveryID is stable across HubSpot's retries:
// "<portalId>/<subscriptionId>/<eventId>/<occurredAt>/<objectId>", plus
// "/<propertyName>" for a property change.
type HubSpotParser struct {
	system string
}

// NewHubSpotParser validates cfg and returns its parser.
func NewHubSpotParser(cfg HubSpotParserConfig) (*HubSpotParser, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	sys := cfg.System
	if sys == "" {
		sys = "hubspot"
	}
	return &HubSpotParser{system: sys}, nil
}

type hubSpotEvent struct {
	EventID          jsonID          `json:"eventId"`
	SubscriptionID   jsonID          `json:"subscriptionId"`
	PortalID         jsonID          `json:"portalId"`
	OccurredAt       int64           `json:"occurredAt"`
	SubscriptionType string          `json:"subscriptionType"`
	ObjectTypeID     string          `json:"objectTypeId"`
	ObjectID         jsonID          `json:"objectId"`
	PropertyName     string          `json:"propertyName"`
	PropertyValue    json.RawMessage `json:"propertyValue"`
	ChangeSource     string          `json:"changeSource"`
	SourceID         jsonID          `json:"sourceId"`
	PrimaryObjectID  jsonID          `json:"primaryObjectId"`
	NewObjectID      jsonID          `json:"newObjectId"`
	MergedObjectIDs  []jsonID        `json:"mergedObjectIds"`
}

var hubSpotTables = map[string]string{
	"contact": "contacts",
	"company": "companies",
	"deal":    "deals",
}

// hubSpotActions are the subscription actions cdcd syncs; events of
// others (associationChange, ...) are acknowledged and ignored.
var hubSpotActions = map[string]bool{
	"creation": true, "restore": true, "deletion": true, "privacyDeletion": true, "propertyChange": true, "merge": true,
}

// hubSpotObjectTypes maps the objectTypeId of generic (object.*) events.
var hubSpotObjectTypes = map[string]string{
	"0-1": "contacts",
	"0-2": "companies",
	"0-3": "deals",
}

// Parse implements Parser.
func (p *HubSpotParser) Parse(r *Request) ([]Change, error) {
	body := bytes.TrimSpace(r.Body)
	if len(body) == 0 || body[0] != '[' {
		return nil, errors.New("hubspot delivery: body is not a JSON array of events")
	}
	var events []hubSpotEvent
	if err := json.Unmarshal(body, &events); err != nil {
		return nil, jsonError("hubspot delivery", err)
	}
	if len(events) > MaxHubSpotEvents {
		return nil, fmt.Errorf("hubspot delivery: %d events, at most %d allowed", len(events), MaxHubSpotEvents)
	}
	out := make([]Change, 0, len(events))
	var errs []error
	for i := range events {
		var err error
		if out, err = p.appendEvent(out, &events[i]); err != nil {
			errs = append(errs, fmt.Errorf("event[%d]: %w", i, err))
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("hubspot delivery: %w", errors.Join(errs...))
	}
	return out, nil
}

func (p *HubSpotParser) appendEvent(out []Change, e *hubSpotEvent) ([]Change, error) {
	object, action, _ := strings.Cut(e.SubscriptionType, ".")
	if object == "" || action == "" {
		return out, fmt.Errorf("unsupported subscriptionType %q", truncate([]byte(e.SubscriptionType)))
	}
	table, ok := hubSpotTables[object]
	if object == "object" {
		if e.ObjectTypeID == "" {
			return out, fmt.Errorf("unsupported objectTypeId %q of %s", truncate([]byte(e.ObjectTypeID)), truncate([]byte(e.SubscriptionType)))
		}
		table, ok = hubSpotObjectTypes[e.ObjectTypeID]
	}
	if !ok || !hubSpotActions[action] {
		// Another object (tickets, line items) or a change cdcd does not
		// sync (associations): HubSpot batches it with the rest.
		return append(out, Change{Kind: e.SubscriptionType, Ignore: true}), nil
	}
	if e.EventID == "" {
		return out, errors.New("no eventId")
	}
	if e.OccurredAt <= 0 {
		return out, errors.New("no occurredAt")
	}
	c := Change{
		Event: cdc.Event{
			Source:     p.system,
			Schema:     p.system,
			Table:      table,
			CommitTime: time.UnixMilli(e.OccurredAt).UTC(),
		},
		Kind: e.SubscriptionType,
	}
	c.OriginHint = e.ChangeSource
	if e.SourceID != "" {
		c.OriginHint += "/" + string(e.SourceID)
	}
	base := string(e.PortalID) + "/" + string(e.SubscriptionID) + "/" + string(e.EventID) + "/" + strconv.FormatInt(e.OccurredAt, 10) + "/"
	if action == "merge" {
		return p.appendMerge(out, e, c, base)
	}
	if e.ObjectID == "" {
		return out, errors.New("no objectId")
	}
	c.Key = keyRow(string(e.ObjectID))
	c.DeliveryID = base + string(e.ObjectID)
	switch action {
	case "creation", "restore":
		c.Op, c.Refetch = cdc.OpCreate, true
	case "deletion", "privacyDeletion":
		c.Op = cdc.OpDelete
	case "propertyChange":
		if e.PropertyName == "" {
			return out, errors.New("propertyChange without propertyName")
		}
		v, err := hubSpotValue(e.PropertyValue)
		if err != nil {
			return out, fmt.Errorf("propertyValue: %w", err)
		}
		c.Op, c.Partial = cdc.OpUpdate, true
		c.After = cdc.Row{{Name: e.PropertyName, Value: v}}
		c.DeliveryID += "/" + e.PropertyName
	default:
		return out, fmt.Errorf("unsupported subscriptionType %q", truncate([]byte(e.SubscriptionType)))
	}
	return append(out, c), nil
}

// appendMerge emits the surviving record for refetch and a delete, with
// MergedInto, for every record merged away.
func (p *HubSpotParser) appendMerge(out []Change, e *hubSpotEvent, c Change, base string) ([]Change, error) {
	survivor := e.NewObjectID
	if survivor == "" {
		survivor = e.PrimaryObjectID
	}
	if survivor == "" {
		survivor = e.ObjectID
	}
	if survivor == "" {
		return out, errors.New("merge without primaryObjectId or newObjectId")
	}
	c.Op, c.Refetch = cdc.OpUpdate, true
	c.Key = keyRow(string(survivor))
	c.DeliveryID = base + string(survivor)
	out = append(out, c)
	gone := e.MergedObjectIDs
	if e.PrimaryObjectID != "" {
		gone = append(gone, e.PrimaryObjectID)
	}
	for _, id := range gone {
		if id == "" || id == survivor {
			continue
		}
		d := c
		d.Op, d.Refetch, d.MergedInto = cdc.OpDelete, false, string(survivor)
		d.Key = keyRow(string(id))
		d.DeliveryID = base + string(id)
		out = append(out, d)
	}
	return out, nil
}

// hubSpotValue encodes a property value as a JSON string (HubSpot sends
// every value as a string; an empty string clears the property). JSON null
// or an absent value stays null; numbers and booleans are kept as sent.
func hubSpotValue(raw json.RawMessage) (json.RawMessage, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return json.RawMessage("null"), nil
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		return cdc.AppendJSONString(nil, s), nil
	case '{', '[':
		return nil, errors.New("is an object or array, want a string")
	}
	return append(json.RawMessage(nil), raw...), nil
}
