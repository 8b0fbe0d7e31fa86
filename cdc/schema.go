package cdc

import "strings"

// Schema blocks: the Kafka Connect JSON schema that Debezium puts next to
// each key and value when its converter runs with schemas.enable=true, so
// that consumers which need column types (JDBC sinks) can read cdcd's
// topics. A message with its schema is {"schema":...,"payload":...}, the
// payload being the message without it. They describe what cdcd writes (see docs/events.md): an exact
// numeric, a date or a timestamp is a string here, as its value is.

// KeySchema returns the schema of the message key of rel's events on
// topic, or nil when rel has no key columns.
func KeySchema(rel *Relation, topic string) []byte {
	var cols []Column
	for _, c := range rel.Columns {
		if c.Key {
			cols = append(cols, c)
		}
	}
	if len(cols) == 0 {
		return nil
	}
	return appendStruct(nil, cols, topic+".Key", "", false)
}

// EnvelopeSchema returns the schema of the envelope (AppendEnvelope) of
// rel's events on topic.
func EnvelopeSchema(rel *Relation, topic string) []byte {
	dst := []byte(`{"type":"struct","fields":[`)
	dst = appendStruct(dst, rel.Columns, topic+".Value", "before", true)
	dst = append(dst, ',')
	dst = appendStruct(dst, rel.Columns, topic+".Value", "after", true)
	dst = append(dst, `,{"type":"struct","fields":[`+
		`{"type":"string","optional":false,"field":"version"},`+
		`{"type":"string","optional":false,"field":"connector"},`+
		`{"type":"string","optional":false,"field":"name"},`+
		`{"type":"int64","optional":false,"field":"ts_ms"},`+
		`{"type":"string","optional":true,"name":"io.debezium.data.Enum","version":1,"parameters":{"allowed":"true,false"},"default":"false","field":"snapshot"},`+
		`{"type":"string","optional":false,"field":"db"},`+
		`{"type":"string","optional":false,"field":"schema"},`+
		`{"type":"string","optional":false,"field":"table"},`+
		`{"type":"int64","optional":true,"field":"txId"},`+
		`{"type":"int64","optional":true,"field":"lsn"},`+
		`{"type":"int64","optional":true,"field":"index"},`+
		`{"type":"string","optional":true,"field":"origin"}`+
		`],"optional":false,"name":"io.debezium.connector.postgresql.Source","field":"source"},`+
		`{"type":"string","optional":false,"field":"op"},`+
		`{"type":"int64","optional":true,"field":"ts_ms"},`+
		`{"type":"array","items":{"type":"string","optional":false},"optional":true,"field":"unchanged"}`+
		`],"optional":false,"name":`...)
	dst = AppendJSONString(dst, topic+".Envelope")
	return append(dst, `,"version":1}`...)
}

// appendStruct appends a struct schema of cols; field names it as a field
// of an enclosing struct when not empty.
func appendStruct(dst []byte, cols []Column, name, field string, optional bool) []byte {
	dst = append(dst, `{"type":"struct","fields":[`...)
	for i, c := range cols {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendColumnType(dst, c.Type, !c.Key)
		dst = append(dst, `,"field":`...)
		dst = AppendJSONString(dst, c.Name)
		dst = append(dst, '}')
	}
	dst = append(dst, `],"optional":`...)
	dst = appendBool(dst, optional)
	dst = append(dst, `,"name":`...)
	dst = AppendJSONString(dst, name)
	if field != "" {
		dst = append(dst, `,"field":`...)
		dst = AppendJSONString(dst, field)
	}
	return append(dst, '}')
}

// appendColumnType appends the opening of a field schema for a column of
// Postgres type typ, without the closing brace.
func appendColumnType(dst []byte, typ string, optional bool) []byte {
	if elem, ok := strings.CutPrefix(typ, "_"); ok {
		dst = append(dst, `{"type":"array","items":`...)
		dst = appendColumnType(dst, elem, true)
		dst = append(dst, `},"optional":`...)
		return appendBool(dst, optional)
	}
	t := connectTypes[typ]
	if t.typ == "" {
		t.typ = "string"
	}
	dst = append(dst, `{"type":"`...)
	dst = append(dst, t.typ...)
	dst = append(dst, `","optional":`...)
	dst = appendBool(dst, optional)
	if t.name != "" {
		dst = append(dst, `,"name":"`...)
		dst = append(dst, t.name...)
		dst = append(dst, `","version":1`...)
	}
	return dst
}

func appendBool(dst []byte, b bool) []byte {
	if b {
		return append(dst, "true"...)
	}
	return append(dst, "false"...)
}

// connectType is a Kafka Connect schema type and its optional logical name.
type connectType struct{ typ, name string }

// connectTypes maps Postgres types to the Connect types of the values cdcd
// writes for them; a type not named here is a string.
var connectTypes = map[string]connectType{
	"bool":        {"boolean", ""},
	"int2":        {"int16", ""},
	"int4":        {"int32", ""},
	"int8":        {"int64", ""},
	"oid":         {"int64", ""},
	"xid":         {"int64", ""},
	"float4":      {"float", ""},
	"float8":      {"double", ""},
	"bytea":       {"bytes", ""},
	"json":        {"string", "io.debezium.data.Json"},
	"jsonb":       {"string", "io.debezium.data.Json"},
	"xml":         {"string", "io.debezium.data.Xml"},
	"uuid":        {"string", "io.debezium.data.Uuid"},
	"timestamptz": {"string", "io.debezium.time.ZonedTimestamp"},
	"interval":    {"string", "io.debezium.time.Interval"},
}
