package postgres

import (
	"context"
	"encoding/json"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/echo"
	"github.com/cdcd-dev/cdcd/store"
	"github.com/cdcd-dev/cdcd/syncapi"
)

// Inbound is what the writer needs beyond its Config to apply a system's
// changes: how to recognise echoes of cdcd's own writes, and how to read a
// record back when a webhook carried too little. Every field may be zero.
type Inbound struct {
	// Object is the system's entity (contacts); links are kept under the
	// origin system and Object. Default: the record's Object.
	Object string
	// Fields are the vendor fields the pipeline maps; only those take part
	// in echo checks and the link's base, and a record read back is asked
	// for them. Nil means every field.
	Fields []string
	// Fetcher reads a record back from the system, for changes marked
	// Refetch and for partial changes of records that are not linked yet
	// and lack the match columns. Mapper maps the record read back.
	Fetcher syncapi.Fetcher
	Mapper  syncapi.Mapper
	// OwnWrite reports whether a vendor's origin hint names cdcd's own
	// client.
	OwnWrite func(hint string) bool
	// Echoes counts suppressed echoes.
	Echoes *echo.Counter
	// Conflicts, when set, decides changes to fields that also changed
	// locally since the last sync.
	Conflicts *Conflicts
}

// vendorID is the record's id in the system: the "id" of the event's key.
func vendorID(e *cdc.Event) string {
	if e == nil {
		return ""
	}
	raw, ok := e.Key.Get("id")
	if !ok {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw) // a number, as its text
}

// relevant returns the fields of the change the pipeline maps.
func (w *Writer) relevant(e *cdc.Event) map[string]json.RawMessage {
	out := make(map[string]json.RawMessage, len(e.After))
	for _, f := range e.After {
		if w.in.Fields == nil || slices.Contains(w.in.Fields, f.Name) {
			out[f.Name] = f.Value
		}
	}
	return out
}

func (w *Writer) object(rec *syncapi.Record) string {
	if w.in.Object != "" {
		return w.in.Object
	}
	return rec.Object
}

// echoLayer returns the layer that recognises the change as an echo of
// cdcd's own write, or "". cdcd's recent writes to the record, which any
// process of the deployment may have made, are read in tx only when the
// link's base does not already know the change.
func (w *Writer) echoLayer(ctx context.Context, tx pgx.Tx, rec *syncapi.Record, l *link) (string, error) {
	return w.echoWith(rec, l, func(object, id string) ([]map[string]any, error) {
		return store.ReadRecentWrites(ctx, tx, w.origin, object, id)
	})
}

// echoWith is echoLayer reading the recent writes to the record with
// recent, only when the link's base does not already know the change.
func (w *Writer) echoWith(rec *syncapi.Record, l *link, recent func(object, id string) ([]map[string]any, error)) (string, error) {
	e := rec.Event
	if e == nil || rec.Op == cdc.OpDelete {
		return "", nil
	}
	if w.hintOnly(e) {
		return echo.LayerHint, nil
	}
	var base map[string]any
	if l != nil {
		base = l.base
	}
	fields := w.relevant(e)
	if ok, layer := echo.Known(fields, base, nil); ok {
		return layer, nil
	}
	id := vendorID(e)
	if id == "" || len(fields) == 0 {
		return "", nil
	}
	writes, err := recent(w.object(rec), id)
	if err != nil {
		return "", err
	}
	if ok, layer := echo.Known(fields, base, writes); ok {
		return layer, nil
	}
	return "", nil
}

// hintOnly reports whether the change is cdcd's own write by its origin
// hint and holds no value of the mapped fields to compare: the apply step
// skips it as an echo, so it is never read back. A change that holds
// values is compared instead, hint or not: values that triggers or flows
// set in the transaction of cdcd's write carry cdcd's hint too (Salesforce
// changeOrigin), and must not be lost with the echo.
func (w *Writer) hintOnly(e *cdc.Event) bool {
	return e != nil && e.OriginHint != "" && w.in.OwnWrite != nil && w.in.OwnWrite(e.OriginHint) && len(w.relevant(e)) == 0
}
