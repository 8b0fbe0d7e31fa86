// Package transform maps a pipeline's change events to records for a
// system: it selects ops, filters, enriches from other tables (lookups)
// and builds each record's fields from columns, constants and expressions
// (github.com/expr-lang/expr). Everything is compiled once by New; Map
// evaluates with pooled environments and never compiles.
//
// # Ops
//
// Create covers inserts and snapshot reads (cdc ops c and r), update u and
// delete d. A truncate is never mapped: Map returns ok=false for it, as for
// an op the pipeline does not select.
//
// # Expressions
//
// Filters, expression sources and lookup keys see:
//
//	op      "create", "update" or "delete"
//	table   "schema.table" (for inbound events "system.entity")
//	key     the key columns; nil for a table without a key
//	before  the old row, sent in full only for tables with REPLICA
//	        IDENTITY FULL; otherwise nil for an insert and for an update
//	        that keeps the key, and the key columns for a delete or an
//	        update that changes the key
//	after   the new row; nil for a delete; unchanged TOASTed columns absent
//	lookup  lookup.<name>: the looked-up row, nil when no row matched
//
// Column values are decoded from the change encoding: integers are ints,
// other JSON numbers float64, numeric columns decimal strings, timestamps
// RFC 3339 strings, json and jsonb maps and lists.
//
// Nil is safe: reading any column of a nil row (before.stock on an insert,
// lookup.customer.email with no customer) yields nil, and an ordering
// comparison (<, <=, >, >=) with nil on either side is false, as in SQL. So
// a threshold crossing needs no guard:
//
//	after.stock < after.reorder_point && before.stock >= before.reorder_point
//
// is false for an insert. It needs REPLICA IDENTITY FULL on the table, or
// before is nil for updates too. To alert on an insert that starts below
// the point, say so: (op == 'create' || before.stock >= before.reorder_point).
// Arithmetic and + on nil are errors; use coalesce or concat. A number
// compared with a string holding a number (a numeric column) compares as
// numbers; two numeric columns compare as strings unless wrapped in
// number(...).
//
// Helpers, each passing nil through unless noted: lower, upper, trim;
// concat(a, ...) (nil is empty; always a string); coalesce(a, ...) (the
// first non-nil); now() (UTC); format_time(t, layout) (t a time or RFC 3339
// string; layout a Go layout or unix, unix_ms, rfc3339, date); number(x)
// (an int when whole, else float64); string(x); json(x) (JSON text; nil is
// "null"). expr's other builtins (len, split, filter, ...) also work.
//
// # Fields
//
// Without a map, a record's fields are the visible columns of after (of
// before for a delete), as is. With one, each target gets its source:
// column sources read after (before for a delete) and leave the target
// absent when the row lacks the column (an unchanged TOASTed value is never
// sent as null); an expression naming an unchanged column is not
// evaluated and its target is absent. Dotted targets (account.name) build
// nested objects. Numbers stay exact (json.Number); an expression's int
// result becomes a json.Number, a time an RFC 3339 string.
//
// # Columns
//
// columns.allow and columns.deny decide which columns the pipeline sees
// at all: the fields of a record without a map, the columns of before and
// after in expressions, and the columns a map may name (naming a hidden
// one is a config error). Key columns are always seen.
//
// # Lookups
//
// A lookup runs after the filter, unless the filter reads lookup results.
// Its key expressions may not use lookups. A key expression that yields nil
// matches no row, without a query. Found rows are cached (expirable LRU,
// cache.size and cache.ttl); missing rows are not, so a row inserted later
// is found at once.
//
// # Errors
//
// An evaluation error (a type mismatch, a non-boolean filter result) or a
// malformed value is cdc.Permanent: evaluating again cannot fix it. Lookup
// query errors are transient. A filter that yields nil is false.
package transform
