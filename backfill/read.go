package backfill

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/cdc/pgtext"
	"github.com/cdcd-dev/cdcd/cdc/pgwal"
)

// table is what a chunk read needs to know of a table.
type table struct {
	schema, name string
	quoted       string
	pk           []string      // primary-key columns, in index order: the read's order and cursor
	pkList       string        // the quoted primary-key columns, comma-separated
	key          []string      // the columns the stream keys t's changes by, in its order
	rel          *cdc.Relation // the columns as the stream describes them, once read
	cols         []pgconn.FieldDescription
	keyCol       []int
}

// describe reads t's primary key, and the key the stream gives its
// changes (see keyColumns).
func describe(ctx context.Context, conn *pgconn.PgConn, t pgwal.Table) (*table, error) {
	res := conn.ExecParams(ctx, `SELECT a.attname FROM pg_index i
		JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
		WHERE i.indrelid = (quote_ident($1) || '.' || quote_ident($2))::regclass AND i.indisprimary
		ORDER BY array_position(i.indkey::int2[], a.attnum)`,
		[][]byte{[]byte(t.Schema), []byte(t.Name)}, nil, nil, nil).Read()
	if res.Err != nil {
		return nil, fmt.Errorf("read primary key of %s: %w", t, res.Err)
	}
	tb := &table{schema: t.Schema, name: t.Name, quoted: quoteIdent(t.Schema) + "." + quoteIdent(t.Name)}
	for _, r := range res.Rows {
		tb.pk = append(tb.pk, string(r[0]))
	}
	if len(tb.pk) == 0 {
		return nil, fmt.Errorf("table %s has no primary key: a backfill reads it in key order; add one (ALTER TABLE %s ADD PRIMARY KEY (...))", t, tb.quoted)
	}
	q := make([]string, len(tb.pk))
	for i, c := range tb.pk {
		q[i] = quoteIdent(c)
	}
	tb.pkList = strings.Join(q, ", ")
	var err error
	if tb.key, err = keyColumns(ctx, conn, t, tb.pk); err != nil {
		return nil, err
	}
	return tb, nil
}

// keyColumns are the columns the stream keys t's changes by (pgwal's
// Decoder), so that a row read has the key of the stream's changes of it:
// the replica identity's columns in the table's column order (its primary
// key by default, or a unique index), the primary key in index order under
// REPLICA IDENTITY FULL (and NOTHING, which gives changes no key).
func keyColumns(ctx context.Context, conn *pgconn.PgConn, t pgwal.Table, pk []string) ([]string, error) {
	res := conn.ExecParams(ctx, `SELECT a.attname FROM pg_class c
		JOIN pg_index i ON i.indrelid = c.oid AND CASE c.relreplident WHEN 'd' THEN i.indisprimary WHEN 'i' THEN i.indisreplident ELSE false END
		JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY(i.indkey)
		WHERE c.oid = (quote_ident($1) || '.' || quote_ident($2))::regclass
		ORDER BY a.attnum`,
		[][]byte{[]byte(t.Schema), []byte(t.Name)}, nil, nil, nil).Read()
	if res.Err != nil {
		return nil, fmt.Errorf("read replica identity of %s: %w", t, res.Err)
	}
	if len(res.Rows) == 0 {
		return pk, nil
	}
	key := make([]string, len(res.Rows))
	for i, r := range res.Rows {
		key[i] = string(r[0])
	}
	return key, nil
}

// estimate is how many rows the backfill reads: the planner's estimate
// for the whole table, a count under a where clause.
func estimate(ctx context.Context, conn *pgconn.PgConn, t *table, where string) (int64, error) {
	sql := `SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = '` + strings.ReplaceAll(t.quoted, "'", "''") + `'::regclass`
	if where != "" {
		sql = `SELECT count(*) FROM ` + t.quoted + ` WHERE (` + where + `)`
	}
	res := conn.ExecParams(ctx, sql, nil, nil, nil, nil).Read()
	if res.Err != nil {
		return 0, fmt.Errorf("estimate rows of %s: %w", t.quoted, res.Err)
	}
	if len(res.Rows) == 0 {
		return 0, nil
	}
	n, err := strconv.ParseInt(string(res.Rows[0][0]), 10, 64)
	if n == 0 && where == "" {
		// Never analyzed: count.
		res = conn.ExecParams(ctx, `SELECT count(*) FROM `+t.quoted, nil, nil, nil, nil).Read()
		if res.Err != nil {
			return 0, fmt.Errorf("count rows of %s: %w", t.quoted, res.Err)
		}
		n, err = strconv.ParseInt(string(res.Rows[0][0]), 10, 64)
	}
	return n, err
}

// chunkRows are the rows a chunk read.
type chunkRows struct {
	events []cdc.Event
	mem    chunkMemory // what events and their rows are cut from
	last   []string    // the last key read, as text values
	snap   *snapshot   // the snapshot they were read in (nil for a read without low)
	bytes  int64       // the rows' values, in bytes
	more   bool        // rows may follow last: limit were read, or the read was cut at its budget
}

// readChunk writes the chunk's low watermark and reads up to limit rows
// after the key after (nil: from the start) in key order, as op r events
// for pipelines, in one round trip: the watermark commits first (without
// waiting for its flush: the high watermark's flushes it), then the rows
// are read in a transaction of its own, so its snapshot follows the low
// watermark. It keeps no row past the one that brings the values to
// budget bytes (0: no budget); the rows after it are read off the
// connection and dropped. The rows are cut from sp's memory where it has
// some (nil: fresh memory).
func readChunk(ctx context.Context, conn *pgconn.PgConn, t *table, low string, after []string, where string, limit int, budget int64, pipelines []string, sp *spare) (chunkRows, error) {
	var b strings.Builder
	const snapResult, rowsResult = 5, 6
	if low != "" {
		b.WriteString("BEGIN; SET LOCAL synchronous_commit = off; SELECT pg_logical_emit_message(true, '" + pgwal.WatermarkPrefix + "', " + quoteLiteral(low) + "); COMMIT; ")
		b.WriteString("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT pg_current_snapshot(); ")
	}
	b.WriteString("SELECT * FROM " + t.quoted)
	var conds []string
	if after != nil {
		lits := make([]string, len(after))
		for i, v := range after {
			lits[i] = quoteLiteral(v)
		}
		conds = append(conds, "("+t.pkList+") > ("+strings.Join(lits, ", ")+")")
	}
	if where != "" {
		conds = append(conds, "("+where+")")
	}
	if len(conds) > 0 {
		b.WriteString(" WHERE " + strings.Join(conds, " AND "))
	}
	b.WriteString(" ORDER BY " + t.pkList + " LIMIT " + strconv.Itoa(limit))
	if low != "" {
		b.WriteString("; COMMIT")
	}
	mrr := conn.Exec(ctx, b.String())
	var cr chunkRows
	var err error
	for n := 0; mrr.NextResult(); n++ {
		rr := mrr.ResultReader()
		if low != "" && n != rowsResult {
			res := rr.Read()
			if res.Err != nil {
				_ = mrr.Close()
				if n < snapResult {
					return chunkRows{}, fmt.Errorf("write watermark: %w", res.Err)
				}
				return chunkRows{}, fmt.Errorf("read a chunk of %s: %w", t.quoted, res.Err)
			}
			if n == snapResult && len(res.Rows) == 1 {
				if cr.snap, err = parseSnapshot(string(res.Rows[0][0])); err != nil {
					_ = mrr.Close()
					return chunkRows{}, err
				}
			}
			continue
		}
		snap := cr.snap
		if cr, err = readRows(t, rr, limit, budget, pipelines, sp); err != nil {
			_ = mrr.Close()
			return chunkRows{}, err
		}
		cr.snap = snap
	}
	if err := mrr.Close(); err != nil {
		return chunkRows{}, fmt.Errorf("read a chunk of %s: %w", t.quoted, err)
	}
	if low != "" && cr.snap == nil {
		return chunkRows{}, fmt.Errorf("read a chunk of %s: no snapshot returned", t.quoted)
	}
	if t.rel == nil && t.cols != nil {
		if t.rel, err = relationOf(ctx, conn, t.cols, t.keyCol); err != nil {
			return chunkRows{}, err
		}
	}
	for i := range cr.events {
		cr.events[i].Relation = t.rel
	}
	return cr, nil
}

// snapshot is which transactions a read saw: all before xmax but those
// in xip (pg_current_snapshot()), as 32-bit transaction ids, which is how
// the stream names them.
type snapshot struct {
	xmax uint32
	xip  map[uint32]struct{}
}

// parseSnapshot parses pg_snapshot's text form, xmin:xmax:xip,xip,...
func parseSnapshot(s string) (*snapshot, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return nil, fmt.Errorf("snapshot %q: want xmin:xmax:xip", s)
	}
	xmax, err := strconv.ParseUint(parts[1], 10, 64)
	if err != nil {
		return nil, fmt.Errorf("snapshot %q: %w", s, err)
	}
	snap := &snapshot{xmax: uint32(xmax), xip: make(map[uint32]struct{})}
	if parts[2] != "" {
		for _, x := range strings.Split(parts[2], ",") {
			xid, err := strconv.ParseUint(x, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("snapshot %q: %w", s, err)
			}
			snap.xip[uint32(xid)] = struct{}{}
		}
	}
	return snap, nil
}

// sees reports whether the snapshot sees transaction xid committed (if
// it committed): xid precedes xmax, modulo 2^32, and is not in xip.
func (s *snapshot) sees(xid uint32) bool {
	if int32(xid-s.xmax) >= 0 {
		return false
	}
	_, running := s.xip[xid]
	return !running
}

// readRows turns a result's rows into events, keeping none past the one
// that brings their values to budget bytes (0: no budget). A chunk's
// values and fields are cut from a few large blocks (see arena), not
// allocated row by row: the rows of a chunk live and die together. The
// events and blocks come from sp where it has some.
func readRows(t *table, rr *pgconn.ResultReader, limit int, budget int64, pipelines []string, sp *spare) (chunkRows, error) {
	fds := rr.FieldDescriptions()
	keyCol, pkCol := make([]int, len(t.key)), make([]int, len(t.pk))
	for _, c := range []struct {
		names []string
		idx   []int
	}{{t.key, keyCol}, {t.pk, pkCol}} {
		for i, k := range c.names {
			c.idx[i] = -1
			for j := range fds {
				if fds[j].Name == k {
					c.idx[i] = j
				}
			}
			if c.idx[i] < 0 {
				_, _ = rr.Close()
				return chunkRows{}, fmt.Errorf("read %s: key column %q not in the result", t.quoted, k)
			}
		}
	}
	rules := make([]*pgtext.Rule, len(fds))
	names := make([]string, len(fds))
	for j := range fds {
		names[j] = fds[j].Name
		if r, ok := pgtext.BuiltinRule(fds[j].DataTypeOID); ok {
			rules[j] = &r
		}
	}
	// The key is the row's own fields when its columns are adjacent in
	// the row (a leading id): no fields of its own.
	keyAt := -1
	if len(keyCol) > 0 {
		keyAt = keyCol[0]
		for i, j := range keyCol {
			if j != keyAt+i {
				keyAt = -1
			}
		}
	}
	keyFields := len(keyCol)
	if keyAt >= 0 {
		keyFields = 0
	}
	var enc pgtext.Encoder
	a := arena{spare: sp}
	events := sp.takeEvents(min(limit, 1<<14))
	lastKey := make([][]byte, len(pkCol))
	ends := make([]int, len(fds))
	var size int64
	cut := false
	for rr.NextRow() {
		if budget > 0 && size >= budget {
			cut = true // read off the connection, not kept
			continue
		}
		vals := rr.Values()
		hint := len(vals) * 16
		for _, v := range vals {
			hint += len(v)
		}
		buf := a.bytes(hint)
		fields := a.fields(len(vals) + keyFields)
		for j, v := range vals {
			switch {
			case v == nil:
				buf = append(buf, "null"...)
			case rules[j] == nil:
				buf = cdc.AppendJSONString(buf, v)
			default:
				buf = enc.Append(buf, *rules[j], v)
			}
			ends[j] = len(buf)
		}
		a.used(buf)
		size += int64(len(buf))
		// Cut the values once the row is whole: an append past the block's
		// end moved the row's first values to another array.
		start := 0
		for j, end := range ends[:len(vals)] {
			fields[j] = cdc.Field{Name: names[j], Value: buf[start:end:end]}
			start = end
		}
		var key []cdc.Field
		if keyAt >= 0 {
			key = fields[keyAt : keyAt+len(keyCol) : keyAt+len(keyCol)]
		} else {
			key = fields[len(vals):]
			for i, j := range keyCol {
				key[i] = fields[j]
			}
		}
		for i, j := range pkCol {
			lastKey[i] = append(lastKey[i][:0], vals[j]...)
		}
		events = append(events, cdc.Event{
			Op: cdc.OpRead, Source: cdc.SourcePostgres, Schema: t.schema, Table: t.name,
			Key: cdc.Row(key), After: cdc.Row(fields[:len(vals):len(vals)]), Pipelines: pipelines,
		})
	}
	cols := make([]pgconn.FieldDescription, len(fds))
	copy(cols, fds)
	if _, err := rr.Close(); err != nil {
		return chunkRows{}, fmt.Errorf("read a chunk of %s: %w", t.quoted, err)
	}
	if len(events) == 0 {
		return chunkRows{}, nil
	}
	if t.rel == nil {
		t.cols, t.keyCol = cols, keyCol
	}
	last := make([]string, len(lastKey))
	for i, k := range lastKey {
		last[i] = string(k)
	}
	a.mem.events = events
	return chunkRows{events: events, mem: a.mem, last: last, bytes: size, more: cut || len(events) == limit}, nil
}

// arena cuts a chunk's values and fields from blocks of blockSize, so that
// reading a row allocates nothing but what a block's end cannot hold.
type arena struct {
	buf   []byte
	flds  []cdc.Field
	spare *spare      // where blocks come from, nil: fresh memory
	mem   chunkMemory // the blocks cut
}

const (
	blockSize  = 64 << 10
	fieldBlock = blockSize / 64 // fields a block
)

// bytes returns an empty slice to append a row's values to, with at least
// hint bytes of room. Call used with what was appended.
func (a *arena) bytes(hint int) []byte {
	if cap(a.buf)-len(a.buf) < hint {
		if hint > blockSize {
			a.buf = make([]byte, 0, hint)
		} else {
			a.buf = a.spare.takeBytes()
			a.mem.bufs = append(a.mem.bufs, a.buf)
		}
	}
	return a.buf[len(a.buf):]
}

// used marks b, a slice bytes returned and appended to, as taken. If the
// row outgrew the block, append moved it to a larger array of its own
// (which b's values keep alive): the block's rest stays for the next row.
func (a *arena) used(b []byte) {
	if cap(b) == cap(a.buf)-len(a.buf) {
		a.buf = a.buf[:len(a.buf)+len(b)]
	}
}

// fields returns n fields of a block.
func (a *arena) fields(n int) []cdc.Field {
	if cap(a.flds)-len(a.flds) < n {
		if n > fieldBlock {
			a.flds = make([]cdc.Field, 0, n)
		} else {
			a.flds = a.spare.takeFields()
			a.mem.flds = append(a.mem.flds, a.flds)
		}
	}
	f := a.flds[len(a.flds) : len(a.flds)+n : len(a.flds)+n]
	a.flds = a.flds[:len(a.flds)+n]
	return f
}

// relationOf describes the result's columns as the stream does: built-in
// types by their name, a domain by its base type's, others by theirs.
func relationOf(ctx context.Context, conn *pgconn.PgConn, cols []pgconn.FieldDescription, keyCol []int) (*cdc.Relation, error) {
	rel := &cdc.Relation{Columns: make([]cdc.Column, len(cols))}
	for i, c := range cols {
		rel.Columns[i].Name = c.Name
		if name, ok := pgtext.TypeName(c.DataTypeOID); ok {
			rel.Columns[i].Type = name
			continue
		}
		res := conn.ExecParams(ctx, `SELECT coalesce(b.typname, t.typname) FROM pg_type t
			LEFT JOIN pg_type b ON t.typtype = 'd' AND b.oid = t.typbasetype WHERE t.oid = $1`,
			[][]byte{[]byte(strconv.FormatUint(uint64(c.DataTypeOID), 10))}, nil, nil, nil).Read()
		if res.Err != nil {
			return nil, fmt.Errorf("read type of column %s: %w", c.Name, res.Err)
		}
		if len(res.Rows) == 1 {
			rel.Columns[i].Type = string(res.Rows[0][0])
		}
	}
	for _, j := range keyCol {
		rel.Columns[j].Key = true
	}
	return rel, nil
}

// emit writes a watermark into the WAL in a transaction of its own.
func emit(ctx context.Context, conn *pgconn.PgConn, content string) error {
	res := conn.ExecParams(ctx, `SELECT pg_logical_emit_message(true, '`+pgwal.WatermarkPrefix+`', $1)`,
		[][]byte{[]byte(content)}, nil, nil, nil).Read()
	if res.Err != nil {
		return fmt.Errorf("write watermark: %w", res.Err)
	}
	return nil
}

// quoteLiteral quotes s as an SQL string literal, whatever
// standard_conforming_strings says.
func quoteLiteral(s string) string {
	return "E'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), "'", "''") + "'"
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
