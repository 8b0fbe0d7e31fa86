package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/internal/jsonvalue"
	"github.com/cdcd-dev/cdcd/syncstate"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Links stores links in cdcd.links. It implements syncstate.Links.
//
// An external id belongs to at most one local record per system and object.
// Put fails with a *LinkConflictError when a link would give a second local
// record an external id that another record holds. A deleted link (its
// record's delete was delivered) holds no id: a record that claims it takes
// it, and the deleted link, which only said to create its record anew, is
// removed.
type Links struct {
	pool *pgxpool.Pool
}

// LinkConflictError reports an external id claimed by a local record while
// another local record holds it. The pipeline dead-letters the claimant.
type LinkConflictError = syncstate.LinkConflictError

// getLinks reads the links of refs ($1-$4: their systems, objects, tables
// and keys). Each link is looked up by the primary key (LATERAL, not
// flattened into a join by OFFSET 0): planned with a batch's size known,
// a join read every link of the table into a hash for each batch once it
// held a few thousand links (16 ms for 500 refs among 20,000 links,
// 1.3 ms by the key).
const getLinks = `
		SELECT l.system, l.object, l.local_table, l.local_key, l.external_id, l.base, l.deleted,
		       coalesce(l.version, ''),
		       -- a position past the server's WAL is another cluster's (a
		       -- restore into a new one): it orders nothing here
		       coalesce(CASE WHEN l.lsn <= pg_current_wal_lsn() THEN l.lsn::text END, ''), l.updated_at,
		       EXISTS (SELECT 1 FROM cdcd.conflicts c WHERE c.status <> 'resolved'
		               AND c.local_table = l.local_table AND c.local_key = l.local_key)
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS r(system, object, local_table, local_key)
		CROSS JOIN LATERAL (SELECT * FROM cdcd.links l WHERE l.system = r.system AND l.object = r.object
			AND l.local_table = r.local_table AND l.local_key = r.local_key OFFSET 0) l`

// Get returns the links of refs that exist, in one query.
func (l *Links) Get(ctx context.Context, refs []syncstate.LinkRef) (map[syncstate.LinkRef]*syncstate.Link, error) {
	out := make(map[syncstate.LinkRef]*syncstate.Link, len(refs))
	if len(refs) == 0 {
		return out, nil
	}
	sys, obj, tbl, key := make([]string, len(refs)), make([]string, len(refs)), make([]string, len(refs)), make([]string, len(refs))
	for i, r := range refs {
		sys[i], obj[i], tbl[i], key[i] = r.System, r.Object, r.Table, r.Key
	}
	rows, _ := on(ctx, l.pool).Query(ctx, getLinks,
		sys, obj, tbl, key)
	var (
		lk   syncstate.Link
		base []byte
		lsn  string
	)
	_, err := pgx.ForEachRow(rows, []any{&lk.System, &lk.Object, &lk.Table, &lk.Key, &lk.ExternalID, &base, &lk.Deleted, &lk.Version, &lsn, &lk.UpdatedAt, &lk.Held}, func() error {
		link := lk
		if link.Deleted {
			link.Base = nil
		} else if err := decodeBase(base, &link.Base); err != nil {
			return fmt.Errorf("base of %s %s %s: %w", link.System, link.Table, link.Key, err)
		}
		if lsn != "" {
			p, err := cdc.ParseLSN(lsn)
			if err != nil {
				return err
			}
			link.LSN = p
		}
		out[syncstate.LinkRef{System: link.System, Object: link.Object, Table: link.Table, Key: link.Key}] = &link
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("get links: %w", err)
	}
	return out, nil
}

// decodeBase keeps numbers exact (json.Number), as the base is compared
// with values received later. It decodes as a json.Decoder with UseNumber
// does, without making one for each base.
func decodeBase(b []byte, dst *map[string]any) error {
	m, err := jsonvalue.DecodeObject(b)
	if err != nil {
		return err
	}
	*dst = m
	return nil
}

// Put upserts links in one statement, all or none. UpdatedAt is set to the
// time of the write. When links holds one ref twice, the last one wins.
// An external id may move from one local record to another within one Put;
// a conflict with a link that stays is a *LinkConflictError (joined, one per
// conflict) and nothing is written.
func (l *Links) Put(ctx context.Context, links []syncstate.Link) error {
	order := lastInKeyOrder(links)
	if len(order) == 0 {
		return nil
	}
	// The arrays go in Postgres's text form, one string each, which pgx
	// sends as it is: encoding them allocates per array, not per element.
	var sys, obj, tbl, key, ext, base, ver, lsn, deleted textArray
	var enc []byte // one base's JSON
	for i, at := range order {
		lk := &links[at]
		if lk.ExternalID == "" {
			return fmt.Errorf("put link %s %s %s %s: empty external id", lk.System, lk.Object, lk.Table, lk.Key)
		}
		b := lk.BaseJSON
		switch {
		case lk.Deleted || b == nil && lk.Base == nil:
			b = []byte("{}")
		case b == nil:
			var err error
			if enc, err = jsonvalue.Append(enc[:0], lk.Base); err != nil {
				return fmt.Errorf("put link %s %s %s %s: encode base: %w", lk.System, lk.Object, lk.Table, lk.Key, err)
			}
			b = enc
		}
		sys.add(lk.System)
		obj.add(lk.Object)
		tbl.add(lk.Table)
		key.add(lk.Key)
		ext.add(lk.ExternalID)
		base.addBytes(b)
		if i == 0 { // room for the others, if they are about this size
			base.b = slices.Grow(base.b, len(base.b)*(len(order)-1)+len(order)*len(base.b)/4)
		}
		if lk.Version != "" {
			ver.add(lk.Version)
		} else {
			ver.null()
		}
		if lk.LSN != 0 {
			lsn.start()
			lsn.b = lk.LSN.Append(lsn.b)
		} else {
			lsn.null()
		}
		deleted.start()
		if lk.Deleted {
			deleted.b = append(deleted.b, 't')
		} else {
			deleted.b = append(deleted.b, 'f')
		}
	}
	n := len(order)
	// The unique external id is checked at the end of the statement, after
	// the deleted links whose ids the batch claims are gone.
	const put = `
		WITH r AS (
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::bool[])
			     AS r(system, object, local_table, local_key, external_id, base, version, lsn, deleted)
		), freed AS (
			DELETE FROM cdcd.links d USING r
			WHERE d.deleted AND d.system = r.system AND d.object = r.object AND d.external_id = r.external_id
			  AND (d.local_table, d.local_key) <> (r.local_table, r.local_key)
		)
		INSERT INTO cdcd.links AS l (system, object, local_table, local_key, external_id, base, deleted, version, lsn, updated_at)
		SELECT system, object, local_table, local_key, external_id, base::jsonb, deleted, version, lsn::pg_lsn, now()
		FROM r
		ON CONFLICT (system, object, local_table, local_key) DO UPDATE SET
			external_id = excluded.external_id, base = excluded.base, deleted = excluded.deleted,
			version = excluded.version, lsn = excluded.lsn, updated_at = excluded.updated_at,
			-- moved only by a delete: a live link's update then changes
			-- no indexed column (HOT, migration 0166)
			deleted_at = CASE WHEN excluded.deleted THEN excluded.deleted_at ELSE l.deleted_at END`
	args := []any{sys.String(), obj.String(), tbl.String(), key.String(), ext.String(), base.String(), ver.String(), lsn.String(), deleted.String()}
	// In InTx's transaction the statement runs in a savepoint sent with it
	// in one round trip: a refused statement is rolled back to it and
	// explained in the transaction, on its connection. Taking a second
	// connection while holding the first waits forever once settling
	// groups hold every connection of the pool.
	var err error
	var explain querier = l.pool
	tx, inTx := on(ctx, l.pool).(pgx.Tx)
	if inTx {
		b := &pgx.Batch{}
		b.Queue("SAVEPOINT cdcd_links")
		b.Queue(put, args...)
		b.Queue("RELEASE SAVEPOINT cdcd_links")
		err, explain = tx.SendBatch(ctx, b).Close(), tx
	} else {
		_, err = l.pool.Exec(ctx, put, args...)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == "links_external_id_key" {
		if inTx {
			if _, rbErr := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT cdcd_links"); rbErr != nil {
				return fmt.Errorf("put %d links: %w (and roll it back: %w)", n, err, rbErr)
			}
		}
		if cerr := l.conflicts(ctx, explain, inOrder(links, order)); cerr != nil {
			return cerr
		}
	}
	if err != nil {
		return fmt.Errorf("put %d links: %w", n, err)
	}
	return nil
}

// conflicts explains a unique violation on external ids: for each link of
// the batch, the record that holds its external id and is neither in the
// batch nor giving it up, or another link of the batch with the same id.
func (l *Links) conflicts(ctx context.Context, q querier, links []syncstate.Link) error {
	type extRef struct{ system, object, ext string }
	type local struct{ table, key string }
	claimed := map[extRef]local{}
	inBatch := map[syncstate.LinkRef]bool{}
	var errs []error
	for _, lk := range links {
		inBatch[syncstate.LinkRef{System: lk.System, Object: lk.Object, Table: lk.Table, Key: lk.Key}] = true
		r := extRef{lk.System, lk.Object, lk.ExternalID}
		if h, ok := claimed[r]; ok {
			errs = append(errs, &LinkConflictError{System: r.system, Object: r.object, ExternalID: r.ext,
				HolderTable: h.table, HolderKey: h.key, ClaimantTable: lk.Table, ClaimantKey: lk.Key})
			continue
		}
		claimed[r] = local{lk.Table, lk.Key}
	}
	sys, obj, ext := make([]string, len(links)), make([]string, len(links)), make([]string, len(links))
	for i, lk := range links {
		sys[i], obj[i], ext[i] = lk.System, lk.Object, lk.ExternalID
	}
	rows, _ := q.Query(ctx, `
		SELECT DISTINCT l.system, l.object, l.external_id, l.local_table, l.local_key
		FROM unnest($1::text[], $2::text[], $3::text[]) AS r(system, object, external_id)
		JOIN cdcd.links l USING (system, object, external_id)
		WHERE NOT l.deleted`, sys, obj, ext)
	var s, o, e, t, k string
	_, err := pgx.ForEachRow(rows, []any{&s, &o, &e, &t, &k}, func() error {
		if inBatch[syncstate.LinkRef{System: s, Object: o, Table: t, Key: k}] {
			return nil // the holder is relinked by this batch
		}
		if c, ok := claimed[extRef{s, o, e}]; ok && (c.table != t || c.key != k) {
			errs = append(errs, &LinkConflictError{System: s, Object: o, ExternalID: e,
				HolderTable: t, HolderKey: k, ClaimantTable: c.table, ClaimantKey: c.key})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("put links: find external id conflicts: %w", err)
	}
	return errors.Join(errs...)
}

// textArray builds an array in Postgres's text form: {"a","b",NULL}.
type textArray struct{ b []byte }

// start begins the next element.
func (a *textArray) start() {
	if len(a.b) == 0 {
		a.b = append(a.b, '{')
	} else {
		a.b = append(a.b, ',')
	}
}

func (a *textArray) null() {
	a.start()
	a.b = append(a.b, "NULL"...)
}

func (a *textArray) add(s string) {
	a.start()
	a.b = append(a.b, '"')
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\\' {
			a.b = append(a.b, '\\')
		}
		a.b = append(a.b, s[i])
	}
	a.b = append(a.b, '"')
}

func (a *textArray) addBytes(s []byte) {
	a.start()
	a.b = append(a.b, '"')
	for _, c := range s {
		if c == '"' || c == '\\' {
			a.b = append(a.b, '\\')
		}
		a.b = append(a.b, c)
	}
	a.b = append(a.b, '"')
}

func (a *textArray) String() string {
	if len(a.b) == 0 {
		return "{}"
	}
	return string(append(a.b, '}'))
}

// lastInKeyOrder returns the indexes of links in key order, the last link
// of each ref only. Rows are locked in key order, whatever order the
// batch came in: two Puts of overlapping links (concurrent Writes, a
// replay) wait for each other instead of deadlocking.
func lastInKeyOrder(links []syncstate.Link) []int {
	order := make([]int, len(links)) // links in key order, without copying them
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(i, j int) int {
		a, b := &links[i], &links[j]
		return cmp.Or(strings.Compare(a.System, b.System), strings.Compare(a.Object, b.Object),
			strings.Compare(a.Table, b.Table), strings.Compare(a.Key, b.Key), cmp.Compare(i, j))
	})
	kept := order[:0]
	for k, at := range order {
		if k+1 < len(order) && sameRef(&links[at], &links[order[k+1]]) {
			continue // a later link of the same ref follows
		}
		kept = append(kept, at)
	}
	return kept
}

func sameRef(a, b *syncstate.Link) bool {
	return a.System == b.System && a.Object == b.Object && a.Table == b.Table && a.Key == b.Key
}

// inOrder returns the links at indexes order, in the order of links.
func inOrder(links []syncstate.Link, order []int) []syncstate.Link {
	at := slices.Sorted(slices.Values(order))
	out := make([]syncstate.Link, len(at))
	for i, k := range at {
		out[i] = links[k]
	}
	return out
}

// The functions below write links inside a caller's transaction: the
// Postgres writer applies a system's change to a local row and links the
// row in the same transaction. Every write to cdcd.links is in this file.

// LinkRecord links the system's record id to the local record ref, in tx,
// with base (a JSON object) as its agreed values. A link of the id to
// another local record gives way; the record's link to another id is
// replaced. version, when not nil, replaces the link's version. The link
// is live (not deleted).
func LinkRecord(ctx context.Context, tx pgx.Tx, ref syncstate.LinkRef, externalID string, base []byte, version *string) error {
	if _, err := tx.Exec(ctx, `DELETE FROM cdcd.links WHERE system = $1 AND object = $2
		AND ((external_id = $3 AND (local_table, local_key) <> ($4, $5)))`,
		ref.System, ref.Object, externalID, ref.Table, ref.Key); err != nil {
		return fmt.Errorf("move the link: %w", err)
	}
	_, err := tx.Exec(ctx, `INSERT INTO cdcd.links AS l (system, object, local_table, local_key, external_id, base, version, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, now())
		ON CONFLICT (system, object, local_table, local_key) DO UPDATE SET
			external_id = excluded.external_id, base = excluded.base, deleted = false,
			version = COALESCE(excluded.version, l.version), updated_at = now()`,
		ref.System, ref.Object, ref.Table, ref.Key, externalID, string(base), version)
	if err != nil {
		return fmt.Errorf("save the link: %w", err)
	}
	return nil
}

// UnlinkRecord removes the link of the system's record id, in tx: the
// system deleted the record.
func UnlinkRecord(ctx context.Context, tx pgx.Tx, system, object, id string) error {
	if _, err := tx.Exec(ctx, `DELETE FROM cdcd.links WHERE system = $1 AND object = $2 AND external_id = $3`,
		system, object, id); err != nil {
		return fmt.Errorf("drop the link: %w", err)
	}
	return nil
}

// SetLinkBase replaces the base of the link of the system's record id
// with base (a JSON object), in tx.
func SetLinkBase(ctx context.Context, tx pgx.Tx, system, object, id string, base []byte) error {
	_, err := tx.Exec(ctx, `UPDATE cdcd.links SET base = $4::jsonb, updated_at = now() WHERE system = $1 AND object = $2 AND external_id = $3`,
		system, object, id, string(base))
	if err != nil {
		return fmt.Errorf("save the link's base: %w", err)
	}
	return nil
}

// SetLinkVersion sets the version of the link of the system's record id
// to the time at (the system's time of the record as cdcd knows it), in
// tx.
func SetLinkVersion(ctx context.Context, tx pgx.Tx, system, object, id string, at time.Time) error {
	_, err := tx.Exec(ctx, `UPDATE cdcd.links SET version = $4 WHERE system = $1 AND object = $2 AND external_id = $3`,
		system, object, id, at.UTC().Format(time.RFC3339Nano))
	if err != nil {
		return fmt.Errorf("move the link's version: %w", err)
	}
	return nil
}

// PruneDeletedLinks deletes the links of records whose delete was
// delivered before olderThan ago, in chunks like PruneAudit. Such a link
// holds the deleted record's id and position, so that a change re-sent
// after a crash, older than the delete, is skipped; once it is gone, a
// change of the local record creates it anew, as the link would have said.
func (s *Store) PruneDeletedLinks(ctx context.Context, olderThan time.Duration) (int64, error) {
	cutoff := time.Now().Add(-olderThan)
	// The outer conditions are checked again on a link written meanwhile
	// (live again): it stays.
	n, err := s.pruneChunks(ctx, `DELETE FROM cdcd.links WHERE deleted AND deleted_at < $1
		AND (system, object, local_table, local_key) IN (
			SELECT system, object, local_table, local_key FROM cdcd.links
			WHERE deleted AND deleted_at < $1 ORDER BY deleted_at LIMIT $2)`, cutoff)
	if err != nil && ctx.Err() == nil {
		err = fmt.Errorf("prune the links deleted before %s: %w", cutoff.Format(time.RFC3339), err)
	}
	return n, err
}

// LinkedRecord is one link LinkRecords writes: the system's record
// ExternalID is the local record Ref, with Base (a JSON object) as its
// agreed values and, when not nil, Version as its version.
type LinkedRecord struct {
	Ref        syncstate.LinkRef
	ExternalID string
	Base       []byte
	Version    *string
}

// LinkRecords does what LinkRecord does for each link, in two statements
// in tx. No two links may name the same external id or local record.
func LinkRecords(ctx context.Context, tx pgx.Tx, links []LinkedRecord) error {
	if len(links) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	QueueLinkRecords(b, links)
	return tx.SendBatch(ctx, b).Close()
}

// QueueLinkRecords queues LinkRecords's statements in b, for a caller
// that sends them with others in one round trip.
func QueueLinkRecords(b *pgx.Batch, links []LinkedRecord) {
	if len(links) == 0 {
		return
	}
	n := len(links)
	sys, obj, tbl, key, ext, base := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	ver := make([]*string, n)
	for i, l := range links {
		sys[i], obj[i], tbl[i], key[i], ext[i], base[i], ver[i] = l.Ref.System, l.Ref.Object, l.Ref.Table, l.Ref.Key, l.ExternalID, string(l.Base), l.Version
	}
	queueExec(b, "move the links", `DELETE FROM cdcd.links l USING unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) AS r(system, object, local_table, local_key, external_id)
		WHERE l.system = r.system AND l.object = r.object AND l.external_id = r.external_id
		AND (l.local_table, l.local_key) <> (r.local_table, r.local_key)`, sys, obj, tbl, key, ext)
	queueExec(b, "save the links", `INSERT INTO cdcd.links AS l (system, object, local_table, local_key, external_id, base, version, updated_at)
		SELECT system, object, local_table, local_key, external_id, base::jsonb, version, now()
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[]) AS r(system, object, local_table, local_key, external_id, base, version)
		ON CONFLICT (system, object, local_table, local_key) DO UPDATE SET
			external_id = excluded.external_id, base = excluded.base, deleted = false,
			version = COALESCE(excluded.version, l.version), updated_at = now()`,
		sys, obj, tbl, key, ext, base, ver)
}

// queueExec queues a statement in b whose error, when it fails, says
// what it did.
func queueExec(b *pgx.Batch, what, sql string, args ...any) {
	q := b.Queue(sql, args...)
	q.Fn = func(br pgx.BatchResults) error {
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	}
}

// SetLinkVersions does what SetLinkVersion does for each of the system's
// records ids[i] of objects[i], with ats[i], in one statement in tx.
func SetLinkVersions(ctx context.Context, tx pgx.Tx, system string, objects, ids []string, ats []time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	versions := make([]string, len(ats))
	for i, at := range ats {
		versions[i] = at.UTC().Format(time.RFC3339Nano)
	}
	_, err := tx.Exec(ctx, `UPDATE cdcd.links l SET version = r.version FROM unnest($2::text[], $3::text[], $4::text[]) AS r(object, external_id, version)
		WHERE l.system = $1 AND l.object = r.object AND l.external_id = r.external_id`, system, objects, ids, versions)
	if err != nil {
		return fmt.Errorf("move the links' versions: %w", err)
	}
	return nil
}
