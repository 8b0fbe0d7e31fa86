package hubspot

import (
	"cmp"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Object is one stored record.
type Object struct {
	Type       string
	ID         string
	Properties map[string]string
	CreatedAt  time.Time
	UpdatedAt  time.Time
	Archived   bool
}

// Write is one change applied to one record.
type Write struct {
	Seq        int // 1-based, in the order the server applied writes
	Type       string
	ID         string
	Op         string            // "create", "update" or "archive"
	Properties map[string]string // the properties the write set
	At         time.Time
	// Source is the changeSource HubSpot reports for the write:
	// "INTEGRATION" for API calls, "CRM_UI" for Insert and Update.
	Source string
}

// store holds every object type's records. The Server's mutex guards it.
type store struct {
	unique  map[string]string // type → unique property
	objects map[string]map[string]*Object
	index   map[string]map[string]string // type → lowercased unique value → id of a live record
	writes  []Write
	nextID  int
	last    time.Time
	// source is the changeSource of the writes being made; "" means
	// "INTEGRATION".
	source string
	// onWrite, when set, is called for every write with the properties
	// whose value it changed, in the order it set them.
	onWrite func(w Write, changed []string)
}

func newStore(unique map[string]string) *store {
	return &store{
		unique:  unique,
		objects: map[string]map[string]*Object{},
		index:   map[string]map[string]string{},
		nextID:  1001,
	}
}

// now returns a millisecond stamp later than every one before it, so that
// each write gets a distinct updatedAt.
func (st *store) now() time.Time {
	t := time.Now().UTC().Truncate(time.Millisecond)
	if !t.After(st.last) {
		t = st.last.Add(time.Millisecond)
	}
	st.last = t
	return t
}

func (st *store) get(typ, id string) *Object {
	o := st.objects[typ][id]
	if o == nil || o.Archived {
		return nil
	}
	return o
}

// byUnique returns the live record of typ whose unique property is value.
func (st *store) byUnique(typ, value string) *Object {
	id, ok := st.index[typ][strings.ToLower(value)]
	if !ok {
		return nil
	}
	return st.get(typ, id)
}

// conflict returns the live record, other than id, that already holds the
// unique value props would set.
func (st *store) conflict(typ, id string, props map[string]string) *Object {
	prop, ok := st.unique[typ]
	if !ok {
		return nil
	}
	v := props[prop]
	if v == "" {
		return nil
	}
	if o := st.byUnique(typ, v); o != nil && o.ID != id {
		return o
	}
	return nil
}

func (st *store) create(typ string, props map[string]string) *Object {
	t := st.now()
	o := &Object{Type: typ, ID: strconv.Itoa(st.nextID), Properties: map[string]string{}, CreatedAt: t}
	st.nextID++
	if st.objects[typ] == nil {
		st.objects[typ] = map[string]*Object{}
	}
	st.objects[typ][o.ID] = o
	st.apply(o, "create", props, t)
	return o
}

func (st *store) update(o *Object, props map[string]string) {
	st.apply(o, "update", props, st.now())
}

func (st *store) archive(o *Object) {
	t := st.now()
	st.unindex(o)
	o.Archived = true
	o.UpdatedAt = t
	st.record(Write{Type: o.Type, ID: o.ID, Op: "archive", At: t}, nil)
}

func (st *store) apply(o *Object, op string, props map[string]string, t time.Time) {
	st.unindex(o)
	var changed []string
	for _, k := range slices.Sorted(maps.Keys(props)) {
		if old, ok := o.Properties[k]; !ok && props[k] != "" || ok && old != props[k] {
			changed = append(changed, k)
		}
	}
	maps.Copy(o.Properties, props)
	o.Properties["hs_object_id"] = o.ID
	o.Properties["createdate"] = stamp(o.CreatedAt)
	o.Properties["lastmodifieddate"] = stamp(t)
	o.UpdatedAt = t
	if prop, ok := st.unique[o.Type]; ok && o.Properties[prop] != "" {
		if st.index[o.Type] == nil {
			st.index[o.Type] = map[string]string{}
		}
		st.index[o.Type][strings.ToLower(o.Properties[prop])] = o.ID
	}
	st.record(Write{Type: o.Type, ID: o.ID, Op: op, Properties: maps.Clone(props), At: t}, changed)
}

func (st *store) record(w Write, changed []string) {
	w.Seq = len(st.writes) + 1
	w.Source = cmp.Or(st.source, "INTEGRATION")
	st.writes = append(st.writes, w)
	if st.onWrite != nil {
		st.onWrite(w, changed)
	}
}

func (st *store) unindex(o *Object) {
	if prop, ok := st.unique[o.Type]; ok {
		key := strings.ToLower(o.Properties[prop])
		if st.index[o.Type][key] == o.ID {
			delete(st.index[o.Type], key)
		}
	}
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func clone(o *Object) Object {
	c := *o
	c.Properties = maps.Clone(o.Properties)
	return c
}
