package pgwal

import (
	"strings"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/cdc/pgtext"
)

// relation is a cached Relation message, ready to encode tuples.
type relation struct {
	schema, table string
	identity      byte // 'd' default, 'n' nothing, 'f' full, 'i' index
	cols          []column
	// key holds the indexes of the event key's columns; empty when the
	// table has no usable key.
	key []int
	// public describes the columns to the events' consumers.
	public *cdc.Relation
}

type column struct {
	name     string
	rule     pgtext.Rule
	identity bool // part of the replica identity (every column under FULL)
}

// relation caches a Relation message, replacing any earlier one for the
// same OID.
func (d *Decoder) relation(data []byte) error {
	m, err := parseRelation(data)
	if err != nil {
		return err
	}
	rel := &relation{schema: m.namespace, table: m.name, identity: m.identity, cols: make([]column, len(m.cols))}
	if rel.schema == "" {
		rel.schema = "pg_catalog"
	}
	for i, c := range m.cols {
		rel.cols[i] = column{name: c.name, rule: d.ruleFor(c.typeOID), identity: c.flags&1 != 0}
	}
	rel.key = d.keyColumns(rel)
	rel.public = &cdc.Relation{Columns: make([]cdc.Column, len(m.cols))}
	for i, c := range m.cols {
		rel.public.Columns[i] = cdc.Column{Name: c.name, Type: d.typeName(c.typeOID)}
	}
	for _, i := range rel.key {
		rel.public.Columns[i].Key = true
	}
	if len(rel.key) == 0 && !d.warned[m.oid] {
		d.warned[m.oid] = true
		d.log.Warn().Str("schema", rel.schema).Str("table", rel.table).Str("replica_identity", string(rel.identity)).
			Msg("table has no key: inserts are captured without a key and updates and deletes cannot be keyed; " +
				"add a primary key or run ALTER TABLE ... REPLICA IDENTITY FULL")
	}
	d.relations[m.oid] = rel
	return nil
}

// ruleFor picks the value rule of a column type: built-in types by OID,
// user types by their Type message. A domain's Type message names its base
// type in pg_catalog (namespace ""), so a domain over a built-in type is
// encoded as that type. Enums and other user types are strings, arrays of
// them arrays of strings.
func (d *Decoder) ruleFor(oid uint32) pgtext.Rule {
	if r, ok := pgtext.BuiltinRule(oid); ok {
		return r
	}
	t, ok := d.types[oid]
	if !ok {
		return pgtext.Rule{Kind: pgtext.KindString}
	}
	if t.namespace == "" {
		if r, ok := pgtext.RuleByName(t.name); ok {
			return r
		}
	}
	if strings.HasPrefix(t.name, "_") {
		return pgtext.Rule{Kind: pgtext.KindString, Array: true, Delim: ','}
	}
	return pgtext.Rule{Kind: pgtext.KindString}
}

// typeName returns the name of type oid as pgoutput names it: a built-in
// type's, or the one its Type message gave ("" when unknown). A domain's
// Type message names its base type.
func (d *Decoder) typeName(oid uint32) string {
	if name, ok := pgtext.TypeName(oid); ok {
		return name
	}
	return d.types[oid].name
}

// keyColumns picks the event key: nothing under REPLICA IDENTITY NOTHING;
// under FULL the primary key from DecoderOptions.PrimaryKey when it names
// columns of the relation; otherwise the replica identity columns.
func (d *Decoder) keyColumns(rel *relation) []int {
	if rel.identity == 'n' {
		return nil
	}
	if rel.identity == 'f' && d.primaryKey != nil {
		if names := d.primaryKey(rel.schema, rel.table); len(names) > 0 {
			key, missing := columnIndexes(rel.cols, names)
			if key != nil {
				return key
			}
			d.log.Warn().Str("schema", rel.schema).Str("table", rel.table).Str("column", missing).
				Msg("primary key column not published; keying REPLICA IDENTITY FULL events by all columns")
		}
	}
	var key []int
	for i := range rel.cols {
		if rel.cols[i].identity {
			key = append(key, i)
		}
	}
	return key
}

// columnIndexes returns the indexes of the named columns, or nil and the
// first name that is not a column.
func columnIndexes(cols []column, names []string) ([]int, string) {
	key := make([]int, 0, len(names))
	for _, name := range names {
		i := 0
		for i < len(cols) && cols[i].name != name {
			i++
		}
		if i == len(cols) {
			return nil, name
		}
		key = append(key, i)
	}
	return key, ""
}
