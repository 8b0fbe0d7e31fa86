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
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/conflict"
	"github.com/cdcd-dev/cdcd/store"
	"github.com/cdcd-dev/cdcd/syncstate"
)

// links are the links of one system's records to rows of the writer's
// table, seen from the inbound side. They are read here and written
// through store's link functions, in the apply's transaction.
type links struct {
	system string // the system the changes come from
	table  string // the local table, schema.table
	pool   *pgxpool.Pool
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

// load locks and returns the link of the system's record id to the
// table; nil when there is none.
func (l links) load(ctx context.Context, tx pgx.Tx, object, id string) (*link, error) {
	var (
		table, key, version string
		base                []byte
	)
	err := tx.QueryRow(ctx, `SELECT local_table, local_key, base, coalesce(version, '') FROM cdcd.links
		WHERE system = $1 AND object = $2 AND external_id = $3 FOR UPDATE`, l.system, object, id).Scan(&table, &key, &base, &version)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the link: %w", err)
	}
	if table != l.table {
		return nil, nil // linked to a record of another table
	}
	lk := &link{localKey: key}
	lk.version, _ = time.Parse(time.RFC3339Nano, version) // a version that is no time compares as unknown
	if err := decodeBase(base, &lk.base); err != nil {
		return nil, fmt.Errorf("decode the link's base: %w", err)
	}
	return lk, nil
}

// queueLoadMany queues, in b, the reading of the links of keys (which
// must be distinct), locked, in one query: once b's results are read,
// out[i] holds the link of keys[i] (nil when there is none). out must be
// as long as keys.
func (l links) queueLoadMany(b *pgx.Batch, keys []linkKey, out []*link) {
	if len(keys) == 0 {
		return
	}
	objects, ids := make([]string, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		objects[i], ids[i] = k.object, k.id
	}
	// Each link is looked up by its index (LATERAL), in key order.
	b.Queue(`SELECT r.ord, l.local_table, l.local_key, l.base, coalesce(l.version, '')
		FROM (SELECT * FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS r(object, external_id, ord) ORDER BY external_id, object) r
		CROSS JOIN LATERAL (SELECT * FROM cdcd.links WHERE system = $1 AND object = r.object AND external_id = r.external_id FOR UPDATE) l`,
		l.system, objects, ids).Query(func(rows pgx.Rows) error {
		var (
			ord                 int64
			table, key, version string
			base                []byte
		)
		_, err := pgx.ForEachRow(rows, []any{&ord, &table, &key, &base, &version}, func() error {
			if ord < 1 || ord > int64(len(keys)) {
				return fmt.Errorf("link %d reported of %d", ord, len(keys))
			}
			if table != l.table {
				return nil // linked to a record of another table
			}
			lk := &link{localKey: key}
			lk.version, _ = time.Parse(time.RFC3339Nano, version) // a version that is no time compares as unknown
			if err := decodeBase(base, &lk.base); err != nil {
				return fmt.Errorf("decode the link's base: %w", err)
			}
			out[ord-1] = lk
			return nil
		})
		if err != nil {
			return fmt.Errorf("read the links: %w", err)
		}
		return nil
	})
}

// decodeBase keeps numbers exact (json.Number): the base is compared
// with values received later.
func decodeBase(b []byte, dst *map[string]any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	return d.Decode(dst)
}

// save records that the system's record id is the local record localKey,
// with fields (the change's values of the mapped fields) merged into the
// base, as of at, the change's time.
func (l links) save(ctx context.Context, tx pgx.Tx, object, id, localKey string, old *link, fields map[string]json.RawMessage, at time.Time) error {
	lr, err := l.linked(object, id, localKey, old, fields, at)
	if err != nil {
		return err
	}
	return store.LinkRecord(ctx, tx, lr.Ref, id, lr.Base, lr.Version)
}

// linked is the link save writes.
func (l links) linked(object, id, localKey string, old *link, fields map[string]json.RawMessage, at time.Time) (store.LinkedRecord, error) {
	base := map[string]any{}
	if old != nil && old.localKey == localKey {
		maps.Copy(base, old.base)
	}
	for name, v := range fields {
		base[name] = v
	}
	b, err := encodeBase(base)
	if err != nil {
		return store.LinkedRecord{}, fmt.Errorf("encode the link's base: %w", err)
	}
	var version *string
	// A late change keeps the version of a later one already applied.
	if !at.IsZero() && (old == nil || !old.version.After(at)) {
		s := at.UTC().Format("2006-01-02T15:04:05.999999999Z07:00")
		version = &s
	}
	ref := syncstate.LinkRef{System: l.system, Object: object, Table: l.table, Key: localKey}
	return store.LinkedRecord{Ref: ref, ExternalID: id, Base: b, Version: version}, nil
}

// encodeBase writes a base as a JSON object, fields in order. The
// change's values (json.RawMessage) are written as they came, once known
// to be JSON; only the values kept from the old base are encoded with
// reflection. Every applied change writes one.
func encodeBase(base map[string]any) ([]byte, error) {
	b := append(make([]byte, 0, 2+32*len(base)), '{')
	for i, name := range slices.Sorted(maps.Keys(base)) {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(cdc.AppendJSONString(b, name), ':')
		switch v := base[name].(type) {
		case json.RawMessage:
			if v == nil {
				b = append(b, "null"...)
				break
			}
			if !json.Valid(v) {
				return nil, fmt.Errorf("the value of field %q is not JSON", name)
			}
			b = append(b, v...)
		default:
			enc, err := json.Marshal(v)
			if err != nil {
				return nil, err
			}
			b = append(b, enc...)
		}
	}
	return append(b, '}'), nil
}

// touch moves the link's version to at when that is later: the system's
// record as of at is known (an echo, a compared change).
func (l links) touch(ctx context.Context, tx pgx.Tx, object, id string, lk *link, at time.Time) error {
	if lk == nil || at.IsZero() || !at.After(lk.version) {
		return nil
	}
	if err := store.SetLinkVersion(ctx, tx, l.system, object, id, at); err != nil {
		return err
	}
	lk.version = at
	return nil
}

// drop removes the link of a record the system deleted.
func (l links) drop(ctx context.Context, tx pgx.Tx, object, id string) error {
	return store.UnlinkRecord(ctx, tx, l.system, object, id)
}

// mergeBase merges values into the link's base: what both sides hold
// once a conflict's decision reached them.
func (l links) mergeBase(ctx context.Context, tx pgx.Tx, object, id string, lk *link, values conflict.Values) error {
	base := maps.Clone(lk.base)
	if base == nil {
		base = map[string]any{}
	}
	for f, v := range values {
		base[f] = v
	}
	b, err := json.Marshal(base)
	if err != nil {
		return err
	}
	return store.SetLinkBase(ctx, tx, l.system, object, id, b)
}

// linkKey is a system's record: its object and id.
type linkKey struct{ object, id string }

// linkState is what refetch needs of a record's link.
type linkState struct {
	version time.Time      // zero when unknown
	base    map[string]any // the agreed field values (vendor names)
}

// states returns, outside any transaction, the link of each of the
// system's records that is linked to a row of the table.
func (l links) states(ctx context.Context, keys []linkKey) (map[linkKey]linkState, error) {
	objects, ids := make([]string, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		objects[i], ids[i] = k.object, k.id
	}
	rows, _ := l.pool.Query(ctx, `SELECT l.object, l.external_id, coalesce(l.version, ''), l.base FROM unnest($2::text[], $3::text[]) AS r(object, external_id)
		JOIN cdcd.links l ON l.system = $1 AND l.object = r.object AND l.external_id = r.external_id AND l.local_table = $4`,
		l.system, objects, ids, l.table)
	linked := map[linkKey]linkState{}
	var (
		object, id, version string
		base                []byte
	)
	if _, err := pgx.ForEachRow(rows, []any{&object, &id, &version, &base}, func() error {
		var s linkState
		s.version, _ = time.Parse(time.RFC3339Nano, version) // a version that is no time compares as unknown
		_ = decodeBase(base, &s.base)                        // an unreadable base compares as empty; applyIn reports it
		linked[linkKey{object, id}] = s
		return nil
	}); err != nil {
		return nil, classify("look up links", err)
	}
	return linked, nil
}
