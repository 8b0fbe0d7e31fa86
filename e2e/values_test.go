package e2e

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/cdcd-dev/cdcd/cdc"
)

// typeCases are the columns of table types: a value of each type as SQL
// and as cdcd must encode it in JSON.
var typeCases = []struct{ col, typ, literal, want string }{
	{"i2", "int2", "-32768", "-32768"},
	{"i4", "int4", "2147483647", "2147483647"},
	{"i8", "int8", "9007199254740992", "9007199254740992"},    // 2^53: still exact as a number
	{"i8big", "int8", "9007199254740993", "9007199254740993"}, // a number past 2^53 too, as Debezium writes int8
	{"i8min", "int8", "-9223372036854775808", "-9223372036854775808"},
	{"num", "numeric(12,6)", "12345.6789", `"12345.678900"`},
	{"b", "bool", "true", "true"},
	{"t", "text", `E'say "hi"\n\tcafé ✓'`, `"say \"hi\"\n\tcafé ✓"`},
	{"vc", "varchar(10)", "'abc'", `"abc"`},
	{"c5", "char(5)", "'ab'", `"ab   "`},
	{"u", "uuid", "'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'", `"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"`},
	// json and jsonb: a string holding the JSON text, as Debezium writes
	// them; 'null'::jsonb is "null", SQL NULL is null
	{"j", "json", `'{"b": 1,   "a": [1,2]}'`, `"{\"b\": 1,   \"a\": [1,2]}"`},
	{"jb", "jsonb", `'{"b": 1, "a": {"c": null}}'`, `"{\"a\": {\"c\": null}, \"b\": 1}"`},
	{"jn", "jsonb", `'null'`, `"null"`},
	{"ta", "text[]", `ARRAY['a', 'b c', NULL, 'd"e', '']`, `["a","b c",null,"d\"e",""]`},
	{"ia", "int4[][]", `'{{1,2},{3,4}}'`, `[[1,2],[3,4]]`},
	{"d", "date", "'2024-02-29'", `"2024-02-29"`},
	{"tm", "time", "'13:45:06.123456'", `"13:45:06.123456"`},
	{"ts", "timestamp", "'2024-02-29 13:45:06.5'", `"2024-02-29T13:45:06.500000"`},
	{"tstz", "timestamptz", "'2024-02-29 15:45:06.5+02'", `"2024-02-29T13:45:06.500000Z"`},
	{"iv", "interval", "'1 year 2 mons 3 days 04:05:06.7'", `"P1Y2M3DT4H5M6.7S"`},
	{"by", "bytea", `'\xdeadbeef'`, `"3q2+7w=="`},
	{"m", "mood", "'very happy'", `"very happy"`},
	{"dom", "posint", "5", "5"},
}

func typesSchema() string {
	cols := []string{"id int PRIMARY KEY"}
	for _, c := range typeCases {
		cols = append(cols, c.col+" "+c.typ)
	}
	return "CREATE TABLE types (" + strings.Join(cols, ", ") + ");"
}

// typesChanges is one transaction: row 1 with a value of every type, row 2
// all NULLs, an update of row 1 and a delete of row 2.
func typesChanges() string {
	cols, vals := []string{"id"}, []string{"1"}
	for _, c := range typeCases {
		cols = append(cols, c.col)
		vals = append(vals, c.literal)
	}
	return "INSERT INTO types (" + strings.Join(cols, ", ") + ") VALUES (" + strings.Join(vals, ", ") + ");" +
		"INSERT INTO types (id) VALUES (2); UPDATE types SET i4 = 7 WHERE id = 1; DELETE FROM types WHERE id = 2"
}

func checkTypes(t *testing.T, d *delivered) {
	full, nulls := map[string]string{"id": "1"}, map[string]string{"id": "2"}
	for _, c := range typeCases {
		full[c.col], nulls[c.col] = c.want, "null"
	}
	updated := map[string]string{}
	for k, v := range full {
		updated[k] = v
	}
	updated["i4"] = "7"
	want := map[string][]struct {
		op            string
		before, after map[string]string
	}{
		keyJSON(1): {{"c", nil, full}, {"u", nil, updated}},
		keyJSON(2): {{"c", nil, nulls}, {"d", map[string]string{"id": "2"}, nil}},
	}
	if len(d.byID) != 4 {
		t.Errorf("%d distinct events, want 4", len(d.byID))
	}
	for key, changes := range want {
		got := d.perKey[key]
		if len(got) != len(changes) {
			t.Errorf("key %s: %d events, want %d", key, len(got), len(changes))
			continue
		}
		for i, w := range changes {
			e := got[i]
			if e.op != w.op || len(e.unchanged) > 0 {
				t.Errorf("event %s: op %s unchanged %v, want op %s and no unchanged columns", e.id, e.op, e.unchanged, w.op)
			}
			checkRow(t, e.id+" before", e.before, w.before)
			checkRow(t, e.id+" after", e.after, w.after)
		}
	}
}

// checkRow compares a decoded row with the JSON each column must hold,
// byte for byte; want nil means the row must be null.
func checkRow(t *testing.T, what string, got map[string]json.RawMessage, want map[string]string) {
	t.Helper()
	if (got == nil) != (want == nil) {
		t.Errorf("%s: null %v, want null %v", what, got == nil, want == nil)
		return
	}
	for col, w := range want {
		g, ok := got[col]
		switch {
		case !ok:
			t.Errorf("%s: column %s missing", what, col)
		case string(g) != w:
			t.Errorf("%s: column %s is %s, want %s", what, col, g, w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%s: %d columns, want %d", what, len(got), len(want))
	}
}

// checkToast expects, for row 1 (big TOASTed): insert; update of n with big
// unchanged (Debezium's placeholder in after, named in unchanged); update
// of big; update of n with big unchanged. For row 2 (big NULL): insert and
// update of n, with big null both times, then its key changed to 3 (a
// delete with its tombstone under key 2, naming key 3, and a create under
// key 3, naming key 2), then deleted (and tombstoned).
func checkToast(t *testing.T, d *delivered, big1, big2 string) {
	b1, _ := json.Marshal(big1)
	b2, _ := json.Marshal(big2)
	const unavailable = `"` + cdc.Unavailable + `"`
	type change struct {
		op             string
		before, after  map[string]string
		unchanged      []string
		newKey, oldKey string
	}
	want := map[string][]change{
		keyJSON(1): {
			{"c", nil, map[string]string{"id": "1", "big": string(b1), "n": "1"}, nil, "", ""},
			{"u", nil, map[string]string{"id": "1", "big": unavailable, "n": "2"}, []string{"big"}, "", ""},
			{"u", nil, map[string]string{"id": "1", "big": string(b2), "n": "2"}, nil, "", ""},
			{"u", nil, map[string]string{"id": "1", "big": unavailable, "n": "3"}, []string{"big"}, "", ""},
		},
		keyJSON(2): {
			{"c", nil, map[string]string{"id": "2", "big": "null", "n": "1"}, nil, "", ""},
			{"u", nil, map[string]string{"id": "2", "big": "null", "n": "2"}, nil, "", ""},
			{"d", map[string]string{"id": "2"}, nil, nil, keyJSON(3), ""},
		},
		keyJSON(3): {
			{"c", nil, map[string]string{"id": "3", "big": "null", "n": "2"}, nil, "", keyJSON(2)},
			{"d", map[string]string{"id": "3"}, nil, nil, "", ""},
		},
	}
	if len(d.byID) != 9 {
		t.Errorf("%d distinct events, want 9", len(d.byID))
	}
	for key, changes := range want {
		got := d.perKey[key]
		if len(got) != len(changes) {
			t.Errorf("key %s: %d events, want %d", key, len(got), len(changes))
			continue
		}
		for i, w := range changes {
			e := got[i]
			if e.op != w.op || !slices.Equal(e.unchanged, w.unchanged) || e.newKey != w.newKey || e.oldKey != w.oldKey {
				t.Errorf("event %s: op %s unchanged %v new key %q old key %q, want op %s unchanged %v new key %q old key %q",
					e.id, e.op, e.unchanged, e.newKey, e.oldKey, w.op, w.unchanged, w.newKey, w.oldKey)
			}
			if e.op == "d" && !e.tombstoned {
				t.Errorf("event %s: delete without its tombstone", e.id)
			}
			if w.before == nil && e.before != nil {
				t.Errorf("event %s: before is not null", e.id)
			}
			for col, v := range w.before {
				if g := e.before[col]; string(g) != v {
					t.Errorf("event %s: before.%s is %s, want %s", e.id, col, g, v)
				}
			}
			for col, v := range w.after {
				if g, ok := e.after[col]; !ok || string(g) != v {
					t.Errorf("event %s: column %s missing or wrong (%d bytes, want %d)", e.id, col, len(g), len(v))
				}
			}
			if len(e.after) != len(w.after) {
				t.Errorf("event %s: after has %d columns, want %d", e.id, len(e.after), len(w.after))
			}
		}
	}
}

// checkTruncate expects three inserts, then the truncate: op "t" with a
// null key, before and after.
func checkTruncate(t *testing.T, d *delivered) {
	if len(d.byID) != 4 {
		t.Fatalf("%d distinct events, want 4", len(d.byID))
	}
	trunc := d.perKey[""]
	if len(trunc) != 1 {
		t.Fatalf("%d events with a null key, want the truncate", len(trunc))
	}
	e := trunc[0]
	if e.op != "t" || e.before != nil || e.after != nil || e.table != "scratch" {
		t.Errorf("event %s: op %s table %s, want a truncate of scratch with null before and after", e.id, e.op, e.table)
	}
	for k := 1; k <= 3; k++ {
		ins := d.perKey[keyJSON(k)]
		if len(ins) != 1 || ins[0].op != "c" || !ins[0].pos.Less(e.pos) {
			t.Errorf("key %d: want one insert before the truncate", k)
		}
	}
}
