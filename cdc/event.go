package cdc

import (
	"bytes"
	"encoding/json"
	"time"
)

// Op is what happened to a record.
type Op byte

const (
	OpCreate   Op = 'c'
	OpUpdate   Op = 'u'
	OpDelete   Op = 'd'
	OpRead     Op = 'r' // a snapshot read (backfill)
	OpTruncate Op = 't'
)

func (o Op) String() string {
	switch o {
	case OpCreate:
		return "c"
	case OpUpdate:
		return "u"
	case OpDelete:
		return "d"
	case OpRead:
		return "r"
	case OpTruncate:
		return "t"
	}
	return "?"
}

// SourcePostgres is Event.Source for changes read from the local WAL.
const SourcePostgres = "postgres"

// Field is one column of a row with its value already encoded as JSON
// (see the value encoding in DESIGN.md: exact numerics as strings, bytea as
// base64, timestamps as RFC 3339). A SQL NULL is the JSON literal null.
type Field struct {
	Name  string
	Value json.RawMessage
}

// Row is a record's columns in table order.
type Row []Field

// Get returns the encoded value of the named column.
func (r Row) Get(name string) (json.RawMessage, bool) {
	for i := range r {
		if r[i].Name == name {
			return r[i].Value, true
		}
	}
	return nil, false
}

// IsNull reports whether v encodes SQL NULL.
func IsNull(v json.RawMessage) bool { return bytes.Equal(v, nullJSON) }

var nullJSON = []byte("null")

// Event is one change to one record, local or remote. Every event, whether
// read from the WAL or received from a vendor webhook, has this shape and
// travels the same path.
type Event struct {
	Op Op
	// Source is where cdcd read the change: SourcePostgres, or a system name
	// for inbound events.
	Source string
	// Origin is the system that first made the change when known (a
	// replication origin "cdcd:<system>" or a cdcd.origin message in the
	// transaction). Empty means the change was made locally. The router
	// never delivers an event to the system named here.
	Origin string
	// Schema and Table name the record's table. For inbound events Schema is
	// the system and Table the vendor entity (contacts, orders, ...).
	Schema, Table string
	// Key holds the key columns (primary key or replica identity). It is nil
	// for tables without a key.
	Key Row
	// Before is the old row: only key columns unless the table has
	// REPLICA IDENTITY FULL; nil for inserts.
	Before Row
	// After is the new row, nil for deletes and truncates. Unchanged TOASTed
	// columns are omitted from After and named in Unchanged.
	After     Row
	Unchanged []string
	// CommitTime is when the transaction committed (or the vendor's
	// occurred-at time for inbound events).
	CommitTime time.Time
	// Pos places a WAL event; TxID is its transaction id.
	Pos  Position
	TxID uint32
	// DeliveryID, when set, is the event id (a vendor's delivery id).
	DeliveryID string
	// Partial (inbound events) means After holds only the fields the vendor
	// reported as changed: a field absent from After is unknown, not null;
	// a field present with null was cleared.
	Partial bool
	// Refetch (inbound events) means the vendor sent no or not enough data:
	// the record must be read back from the vendor before it is applied. Op
	// is still the best guess. A nil Key with Refetch means the whole Table
	// must be re-read (a Salesforce GAP_OVERFLOW).
	Refetch bool
	// OriginHint (inbound events) is what the vendor says about who made the
	// change (HubSpot changeSource[/sourceId], Salesforce changeOrigin). It
	// is a hint for echo suppression, not proof, so it is not Origin.
	OriginHint string
	// Relation describes the captured table's columns; events of one
	// table share it until the table's definition changes. Nil for inbound
	// events and for events read back from the bus.
	Relation *Relation
	// Pipelines, when not empty, names the only pipelines that receive the
	// event: a backfill's snapshot reads (op r) go to the pipelines it
	// fills, not to every pipeline of the table.
	Pipelines []string
	// Ack is settled once the event is durable downstream. Nil for events
	// nobody tracks.
	Ack Acker
}

// Relation is a captured table's columns as the WAL last described them.
type Relation struct {
	Columns []Column
}

// Column is one column of a Relation.
type Column struct {
	Name string
	// Type is the Postgres type name as pgoutput names it ("int4",
	// "_text" for an array of text; a domain is its base type), or "" when
	// unknown.
	Type string
	// Key is set for the event key's columns.
	Key bool
}

// ID is the stable event id: DeliveryID for inbound events, otherwise
// "<commit_lsn>/<index>".
func (e *Event) ID() string {
	if e.DeliveryID != "" {
		return e.DeliveryID
	}
	return e.Pos.String()
}

// Acker settles an event. Ack(nil) means the event is durable; a non-nil
// error is a nack, which stops the reader so that everything from the last
// confirmed position is read again.
type Acker interface {
	Ack(err error)
}

// Settle acknowledges e if anyone tracks it.
func (e *Event) Settle(err error) {
	if e.Ack != nil {
		e.Ack.Ack(err)
	}
}
