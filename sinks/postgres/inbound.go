package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/delivery"
	"github.com/cdcd-dev/cdcd/echo"
	"github.com/cdcd-dev/cdcd/store"
	"github.com/cdcd-dev/cdcd/syncstate"
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
	Fetcher delivery.Fetcher
	Mapper  delivery.Mapper
	// OwnWrite reports whether a vendor's origin hint names cdcd's own
	// client.
	OwnWrite func(hint string) bool
	// Echoes counts suppressed echoes.
	Echoes *echo.Counter
	// Conflicts, when set, decides changes to fields that also changed
	// locally since the last sync.
	Conflicts *Conflicts
}

// link is a record's row in cdcd.links, seen from the inbound side.
type link struct {
	localKey string         // JSON of the local primary key
	base     map[string]any // the agreed field values (vendor names)
	// version is the system's time of the record when it was last synced:
	// its updated-at after cdcd's write, or the occurred-at of the change
	// applied. Zero when unknown.
	version time.Time
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

func (w *Writer) object(rec *delivery.Record) string {
	if w.in.Object != "" {
		return w.in.Object
	}
	return rec.Object
}

// loadLink locks and returns the link of the system's record id to this
// writer's table; nil when there is none.
func (w *Writer) loadLink(ctx context.Context, tx pgx.Tx, object, id string) (*link, error) {
	var (
		table, key, version string
		base                []byte
	)
	err := tx.QueryRow(ctx, `SELECT local_table, local_key, base, coalesce(version, '') FROM cdcd.links
		WHERE system = $1 AND object = $2 AND external_id = $3 FOR UPDATE`, w.origin, object, id).Scan(&table, &key, &base, &version)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the link: %w", err)
	}
	if table != w.cfg.Table {
		return nil, nil // linked to a record of another table
	}
	l := &link{localKey: key}
	l.version, _ = time.Parse(time.RFC3339Nano, version) // a version that is no time compares as unknown
	d := json.NewDecoder(bytes.NewReader(base))
	d.UseNumber()
	if err := d.Decode(&l.base); err != nil {
		return nil, fmt.Errorf("decode the link's base: %w", err)
	}
	return l, nil
}

// saveLink records that the system's record id is the local record
// localKey, with the change's fields merged into the base.
func (w *Writer) saveLink(ctx context.Context, tx pgx.Tx, object, id, localKey string, old *link, e *cdc.Event) error {
	base := map[string]any{}
	if old != nil && old.localKey == localKey {
		maps.Copy(base, old.base)
	}
	for name, v := range w.relevant(e) {
		base[name] = v // json.RawMessage encodes as itself
	}
	b, err := json.Marshal(base)
	if err != nil {
		return fmt.Errorf("encode the link's base: %w", err)
	}
	var version *string
	// A late change keeps the version of a later one already applied.
	if !e.CommitTime.IsZero() && (old == nil || !old.version.After(e.CommitTime)) {
		s := e.CommitTime.UTC().Format("2006-01-02T15:04:05.999999999Z07:00")
		version = &s
	}
	ref := syncstate.LinkRef{System: w.origin, Object: object, Table: w.cfg.Table, Key: localKey}
	return store.LinkRecord(ctx, tx, ref, id, b, version)
}

// touchVersion moves the link's version to at when that is later: the
// system's record as of at is known (an echo, a compared change).
func (w *Writer) touchVersion(ctx context.Context, tx pgx.Tx, object, id string, lk *link, at time.Time) error {
	if lk == nil || at.IsZero() || !at.After(lk.version) {
		return nil
	}
	if err := store.SetLinkVersion(ctx, tx, w.origin, object, id, at); err != nil {
		return err
	}
	lk.version = at
	return nil
}

// dropLink removes the link of a record the system deleted.
func (w *Writer) dropLink(ctx context.Context, tx pgx.Tx, object, id string) error {
	return store.UnlinkRecord(ctx, tx, w.origin, object, id)
}

// echoLayer returns the layer that recognises the change as an echo of
// cdcd's own write, or "". cdcd's recent writes to the record, which any
// process of the deployment may have made, are read in tx only when the
// link's base does not already know the change.
func (w *Writer) echoLayer(ctx context.Context, tx pgx.Tx, rec *delivery.Record, l *link) (string, error) {
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
	writes, err := store.ReadRecentWrites(ctx, tx, w.origin, w.object(rec), id)
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
