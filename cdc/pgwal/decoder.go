package pgwal

import (
	"github.com/cdcd-dev/cdcd/cdc/pgtext"

	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
)

// Step says what a decoded message means for the stream.
type Step uint8

const (
	StepNone      Step = iota // nothing for the stream to do (Relation, Type, Origin, a transactional cdcd.origin message, ...)
	StepBegin                 // a transaction began; Txn() describes it
	StepChange                // events were appended to out
	StepCommit                // the transaction ended; Txn().EndLSN is set
	StepMessage               // a non-transactional logical message outside a transaction; Message() describes it
	StepWatermark             // a transactional cdcd.watermark message inside a transaction; Message() describes it
)

// TxnInfo describes the open (or just committed) transaction.
type TxnInfo struct {
	// CommitLSN is the start of the commit record (Begin's final LSN), the
	// LSN that places the transaction's events. EndLSN, set at StepCommit,
	// is the only LSN that may be confirmed to the server.
	CommitLSN, EndLSN cdc.LSN
	CommitTime        time.Time
	Xid               uint32
	// Origin is the system that made the transaction's changes, learned from
	// an Origin record or a cdcd.origin message. Both arrive after Begin and
	// before the first change, so Origin is final from the first StepChange.
	Origin string
}

// LogicalMessage is a message written with pg_logical_emit_message.
type LogicalMessage struct {
	LSN           cdc.LSN
	Transactional bool
	Prefix        string
	Content       []byte
}

// DecoderOptions configures a Decoder.
type DecoderOptions struct {
	// Log receives warnings about tables without a usable key (table names,
	// never row values).
	Log zerolog.Logger
	// PrimaryKey returns the primary-key column names of a table, when known.
	// Under REPLICA IDENTITY FULL every column is flagged as key in the Relation
	// message, so the decoder uses this to pick the real key; nil or an empty
	// answer → the flagged columns.
	// It is called from Decode, when a Relation message for a REPLICA
	// IDENTITY FULL table arrives.
	PrimaryKey func(schema, table string) []string
}

// WatermarkPrefix is the prefix of the transactional logical messages a
// backfill writes around each chunk it reads (see Snapshots).
const WatermarkPrefix = "cdcd.watermark"

// Decoder turns pgoutput v1 messages into events. It caches relations and
// types across transactions and sessions and tracks the open transaction.
// It is not safe for concurrent use.
type Decoder struct {
	log        zerolog.Logger
	primaryKey func(schema, table string) []string

	relations map[uint32]*relation
	types     map[uint32]typeMsg
	warned    map[uint32]bool // keyless relations already warned about

	inTxn bool
	txn   TxnInfo
	index uint32 // next event's index within the transaction
	msg   LogicalMessage

	// Reused working space.
	oldTuple, newTuple []tupleValue
	oldSpans, newSpans []span
	enc                pgtext.Encoder
}

// NewDecoder returns a Decoder with an empty relation cache.
func NewDecoder(opts DecoderOptions) *Decoder {
	return &Decoder{
		log:        opts.Log,
		primaryKey: opts.PrimaryKey,
		relations:  make(map[uint32]*relation),
		types:      make(map[uint32]typeMsg),
		warned:     make(map[uint32]bool),
	}
}

// Txn describes the open transaction, or the last one after StepCommit.
func (d *Decoder) Txn() TxnInfo { return d.txn }

// Message is the logical message of the last StepMessage. Every logical
// message is a StepMessage except a transactional one inside B…C, which is
// part of its transaction (a cdcd.origin message sets Txn().Origin). With
// pgoutput v1, non-transactional messages arrive outside any transaction.
// Content is a copy the caller may keep.
func (d *Decoder) Message() LogicalMessage { return d.msg }

// Reset forgets in-transaction state after a reconnect. Relations and
// types are kept (the server re-sends 'R' before a relation's first change
// in every session, and each 'R' replaces the cached one).
func (d *Decoder) Reset() {
	d.inTxn = false
	d.txn = TxnInfo{}
	d.index = 0
	d.msg = LogicalMessage{}
}

// Decode decodes one pgoutput message. Events are appended to out; their
// values are copied, data is not retained.
//
// A non-nil error means the stream is malformed or out of step with the
// decoder (a change for a relation never described, a change outside a
// transaction, an unknown message type); out is then returned unchanged,
// with StepNone.
func (d *Decoder) Decode(data []byte, out []cdc.Event) ([]cdc.Event, Step, error) {
	if len(data) == 0 {
		return out, StepNone, errors.New("decode pgoutput message: empty payload")
	}
	n := len(out)
	var step Step
	var err error
	switch data[0] {
	case msgBegin:
		step, err = StepBegin, d.begin(data)
	case msgCommit:
		step, err = StepCommit, d.commit(data)
	case msgOrigin:
		step, err = StepNone, d.origin(data)
	case msgRelation:
		step, err = StepNone, d.relation(data)
	case msgType:
		var m typeMsg
		if m, err = parseType(data); err == nil {
			d.types[m.oid] = m
		}
		step = StepNone
	case msgInsert, msgUpdate, msgDelete:
		step = StepChange
		out, err = d.change(data, out)
	case msgTruncate:
		step = StepChange
		out, err = d.truncate(data, out)
	case msgMessage:
		step, err = d.message(data)
	default:
		err = fmt.Errorf("decode pgoutput message: unknown message type %q", data[0])
	}
	if err != nil {
		return out[:n], StepNone, err
	}
	return out, step, nil
}

func (d *Decoder) begin(data []byte) error {
	m, err := parseBegin(data)
	if err != nil {
		return err
	}
	if d.inTxn {
		return fmt.Errorf("decode pgoutput begin: transaction %d (commit lsn %s) is still open", d.txn.Xid, d.txn.CommitLSN)
	}
	d.inTxn = true
	d.txn = TxnInfo{CommitLSN: m.finalLSN, CommitTime: m.commitTime, Xid: m.xid}
	d.index = 0
	return nil
}

func (d *Decoder) commit(data []byte) error {
	m, err := parseCommit(data)
	if err != nil {
		return err
	}
	if !d.inTxn {
		return fmt.Errorf("decode pgoutput commit at %s: no transaction is open", m.commitLSN)
	}
	if m.commitLSN != d.txn.CommitLSN {
		return fmt.Errorf("decode pgoutput commit: commit lsn %s differs from begin's %s", m.commitLSN, d.txn.CommitLSN)
	}
	d.inTxn = false
	d.txn.EndLSN = m.endLSN
	return nil
}

func (d *Decoder) origin(data []byte) error {
	m, err := parseOrigin(data)
	if err != nil || !d.inTxn {
		return err
	}
	d.txn.Origin = cdc.OriginSystem(string(m.name))
	return nil
}

func (d *Decoder) message(data []byte) (Step, error) {
	m, err := parseLogicalMessage(data)
	if err != nil {
		return StepNone, err
	}
	if m.transactional && d.inTxn {
		switch string(m.prefix) {
		case cdc.OriginMessage:
			d.txn.Origin = string(m.content)
		case WatermarkPrefix:
			d.msg = LogicalMessage{LSN: m.lsn, Transactional: true, Prefix: WatermarkPrefix, Content: bytes.Clone(m.content)}
			return StepWatermark, nil
		}
		return StepNone, nil
	}
	d.msg = LogicalMessage{LSN: m.lsn, Transactional: m.transactional, Prefix: string(m.prefix), Content: bytes.Clone(m.content)}
	return StepMessage, nil
}

func (d *Decoder) truncate(data []byte, out []cdc.Event) ([]cdc.Event, error) {
	m, err := parseTruncate(data)
	if err != nil {
		return out, err
	}
	if !d.inTxn {
		return out, errors.New("decode pgoutput truncate: no transaction is open")
	}
	for _, oid := range m.rels {
		if d.relations[oid] == nil {
			return out, fmt.Errorf("decode pgoutput truncate: unknown relation oid %d (no Relation message received for it)", oid)
		}
	}
	for _, oid := range m.rels {
		out = append(out, d.event(cdc.OpTruncate, d.relations[oid]))
	}
	return out, nil
}

// Stamp places events made outside the WAL (a backfill's snapshot reads)
// in the open transaction: its commit time, LSN and id, and the next
// indexes, so their ids are unique and ordered like the transaction's own.
func (d *Decoder) Stamp(events []cdc.Event) {
	for i := range events {
		events[i].CommitTime = d.txn.CommitTime
		events[i].Pos = cdc.Position{CommitLSN: d.txn.CommitLSN, Index: d.index}
		events[i].TxID = d.txn.Xid
		d.index++
	}
}

// event returns an event for rel with the transaction's fields set and
// takes the next index.
func (d *Decoder) event(op cdc.Op, rel *relation) cdc.Event {
	e := cdc.Event{
		Op:         op,
		Source:     cdc.SourcePostgres,
		Origin:     d.txn.Origin,
		Schema:     rel.schema,
		Table:      rel.table,
		CommitTime: d.txn.CommitTime,
		Pos:        cdc.Position{CommitLSN: d.txn.CommitLSN, Index: d.index},
		TxID:       d.txn.Xid,
		Relation:   rel.public,
	}
	d.index++
	return e
}
