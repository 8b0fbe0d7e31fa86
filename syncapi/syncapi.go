// Package syncapi is the contract between the delivery engine (package
// delivery) and the writers of the systems (sinks/...): the Record a
// change is mapped to, the Result of writing it, the Writer interface and
// the optional interfaces a writer implements to tell the engine what it
// can do (batch, settle creates, read back, read versions, patch). A
// writer imports this package, not the engine.
package syncapi

import (
	"context"
	"errors"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
)

// Record is one change mapped for one system.
type Record struct {
	// Event is the change the record was mapped from (id, position, origin,
	// before and after).
	Event *cdc.Event
	// Op is what to do: OpCreate and OpUpdate upsert the record, OpDelete
	// removes it as the system's delete policy says.
	Op cdc.Op
	// Object is the system's object type: contacts, companies, Contact, ...
	Object string
	// Key identifies the local record (the JSON of its key columns). Records
	// with one Key are written in order and never two at once.
	Key string
	// ExternalID is the record's id in the system, from its link; empty
	// when the record was never synced.
	ExternalID string
	// Unsettled is set, for a writer that is a Settler, on a record without
	// ExternalID whose create was sent before (by this process or one that
	// ended since) without cdcd learning the outcome: the system may hold
	// the record already. The writer must find it before creating it, or
	// fail the record with an error wrapping ErrOutcomeUnknown rather than
	// risk a duplicate. A dead letter an operator replays is never
	// Unsettled: replaying is the operator's word that it may be sent.
	Unsettled bool
	// Fields are the mapped values, named as the system names them. Dotted
	// target paths (account.name) are nested maps. Values are what
	// encoding/json decodes: string, float64 or json.Number, bool, nil,
	// []any, map[string]any.
	Fields map[string]any
}

// Result is the outcome of writing one record.
type Result struct {
	// ExternalID is the system's id for the record after a create or an
	// upsert (and the known id otherwise).
	ExternalID string
	// Version is the system's version or updated-at stamp of the record
	// after the write, when it reports one.
	Version string
	// Err is nil on success. cdc.Permanent errors are dead-lettered at once;
	// others are retried (no sooner than cdc.RetryAfterOf says).
	Err error
	// Encoded, when set, is the JSON of the record's Fields as the Writer
	// sent them (jsonvalue's encoding, e.g. a request's body): the engine
	// stores it as the link's base instead of encoding the fields again.
	Encoded []byte
}

// Writer writes records to one external system.
//
// Write returns one Result per record, in order. A non-nil error means the
// call failed as a whole (nothing applied, or the outcome is unknown) and is
// classified like Result.Err. Write receives at most MaxBatch records; the
// caller never passes two records with the same Key in one call. Writes
// must be idempotent (upsert by external id or a unique property): after a
// timeout the same records are written again.
type Writer interface {
	Write(ctx context.Context, records []Record) ([]Result, error)
}

// ErrOutcomeUnknown is wrapped by the error of a write that the system may
// or may not have applied: the connection failed or timed out after the
// request was sent, or the answer could not be matched to the record.
var ErrOutcomeUnknown = errors.New("outcome unknown")

// Settler is implemented by writers some of whose creates are not
// idempotent. For each record without ExternalID for which SettlesCreate
// reports true (a plain create, not an upsert by a unique property), the
// pipeline records the create in its PendingCreates store before the
// Writer call, and clears it once the record is linked or its error shows
// nothing was applied; until then the record's later writes, after a
// restart too, carry Record.Unsettled. SettlesCreate must not block.
type Settler interface {
	SettlesCreate(rec *Record) bool
}

// Batcher is implemented by writers that take more than one record per
// call; MaxBatch is the most records one Write accepts.
type Batcher interface {
	MaxBatch() int
}

// EveryChange is implemented by writers whose writes depend on each
// change's previous state (a compare-and-set against the before-image):
// when EveryChange reports true, the pipeline never coalesces pending
// changes of a record into the latest one.
type EveryChange interface {
	EveryChange() bool
}

// Fetcher is implemented by writers that can read records back from their
// system, for inbound changes that carry too little (a webhook naming only
// the record, or one property of it). Fetch reads the records ids of
// object in as few calls as the system allows and returns their fields as
// the system names them (at least those named in fields, when the system
// returns only what it is asked for; nil fields means its default set), by
// id. With a nil error, an id without a row is a record that no longer
// exists. A non-nil error, classified like Write's, means the ids without
// a row could not all be read; the rows returned were.
type Fetcher interface {
	Fetch(ctx context.Context, object string, ids, fields []string) (map[string]cdc.Row, error)
}

// Mapper turns an event into the record for a system; ok=false means the
// pipeline skips the event (filtered out, or its op is not selected). An
// error means the event cannot be mapped: the pipeline dead-letters it, and
// a replay maps it again. Package transform implements it.
type Mapper interface {
	Map(ctx context.Context, e *cdc.Event) (rec Record, ok bool, err error)
}

// Versioner is a Writer that reads the system's current version (its
// updated-at) of records. With PipelineConfig.RemoteMoved set, a pipeline
// reads the versions of the records it is about to update and does not
// write over a change the system made since cdcd last synced the record.
type Versioner interface {
	Versions(ctx context.Context, object string, ids []string) (map[string]time.Time, error)
}

// Patcher is a Writer whose updates change only the fields they carry
// (PATCH). Its updates of linked records carry only the fields that differ
// from the last sync, so a field changed in the system meanwhile is not
// written over with the value it had then.
type Patcher interface {
	PatchesFields() bool
}
