package soak

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// conflictRow is a row of cdcd.conflicts, as the check reads it.
type conflictRow struct {
	ID         int64
	ExternalID string
	LocalKey   string
	Fields     []string
	Status     string
	Rule       string
}

// check verifies the invariant at rest. Every local contact is linked to
// a live HubSpot contact, and every live HubSpot contact of the soak to a
// local one; a linked pair holds the same values in every mapped field,
// or the record has an open conflict, which lists fields; every conflict
// names the rule that decided it (or that left it to a person). It
// returns one line per violation.
func (d *deployment) check(records int, h history) []string {
	d.t.Helper()
	ctx := context.Background()
	var out []string
	bad := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }

	links := map[string]string{} // local key -> external id
	rows, err := d.pool.Query(ctx, `SELECT local_key, external_id FROM cdcd.links WHERE system = 'hubspot' AND object = 'contacts'`)
	if err != nil {
		d.t.Fatal(err)
	}
	for rows.Next() {
		var k, id string
		if err := rows.Scan(&k, &id); err != nil {
			d.t.Fatal(err)
		}
		links[k] = id
	}
	if err := rows.Err(); err != nil {
		d.t.Fatal(err)
	}

	var conflicts []conflictRow
	rows, err = d.pool.Query(ctx, `SELECT id, external_id, local_key, fields, status, coalesce(rule, '') FROM cdcd.conflicts ORDER BY id`)
	if err != nil {
		d.t.Fatal(err)
	}
	for rows.Next() {
		var c conflictRow
		if err := rows.Scan(&c.ID, &c.ExternalID, &c.LocalKey, &c.Fields, &c.Status, &c.Rule); err != nil {
			d.t.Fatal(err)
		}
		conflicts = append(conflicts, c)
		if c.Rule == "" {
			bad("conflict %d (%s, contact %s) names no rule", c.ID, c.Status, c.ExternalID)
		}
		if len(c.Fields) == 0 {
			bad("conflict %d (%s, contact %s) names no field", c.ID, c.Status, c.ExternalID)
		}
	}
	if err := rows.Err(); err != nil {
		d.t.Fatal(err)
	}
	d.stats.conflicts = len(conflicts)
	open := func(localKey, extID string) *conflictRow {
		for i := range conflicts {
			c := &conflicts[i]
			if c.Status != "resolved" && (c.LocalKey == localKey && localKey != "" || c.ExternalID == extID) {
				return c
			}
		}
		return nil
	}

	hub := map[string]map[string]string{} // live HubSpot contacts by id
	for _, o := range d.hub.Objects("contacts") {
		if !o.Archived {
			hub[o.ID] = o.Properties
		}
	}
	linkedHub := map[string]bool{}
	rows, err = d.pool.Query(ctx, `SELECT json_build_object('id', id)::text, email, coalesce(first_name, ''), coalesce(last_name, ''),
		coalesce(phone, ''), coalesce(company, '') FROM contacts WHERE email LIKE '%@soak.example.com' ORDER BY id`)
	if err != nil {
		d.t.Fatal(err)
	}
	type local struct {
		key, email string
		values     map[string]string
	}
	var locals []local
	for rows.Next() {
		var l local
		var v [4]string
		if err := rows.Scan(&l.key, &l.email, &v[0], &v[1], &v[2], &v[3]); err != nil {
			d.t.Fatal(err)
		}
		l.key = compactJSON(l.key)
		l.values = map[string]string{}
		for i, f := range fields {
			l.values[f.vendor] = v[i]
		}
		locals = append(locals, l)
	}
	if err := rows.Err(); err != nil {
		d.t.Fatal(err)
	}
	for _, l := range locals {
		id, ok := links[l.key]
		if !ok {
			bad("%s: local row %s is not linked", l.email, l.key)
			continue
		}
		props, ok := hub[id]
		if !ok {
			bad("%s: linked to HubSpot contact %s, which is not live", l.email, id)
			continue
		}
		linkedHub[id] = true
		var differ []string
		for _, f := range fields {
			if props[f.vendor] != l.values[f.vendor] {
				differ = append(differ, fmt.Sprintf("%s local %q HubSpot %q", f.vendor, l.values[f.vendor], props[f.vendor]))
			}
		}
		if props["email"] != l.email {
			differ = append(differ, fmt.Sprintf("email local %q HubSpot %q", l.email, props["email"]))
		}
		if len(differ) == 0 {
			d.stats.agree++
			continue
		}
		if c := open(l.key, id); c != nil {
			d.stats.held++
			continue // held: the conflict says why
		}
		bad("%s (contact %s) differs with no open conflict: %s; HubSpot writes: %s",
			l.email, id, strings.Join(differ, ", "), d.writes(id))
	}
	for id, props := range hub {
		if !linkedHub[id] && strings.HasSuffix(props["email"], "@soak.example.com") {
			if open("", id) != nil {
				d.stats.held++
				continue // a delete held by the record's conflict
			}
			var key string
			_ = d.pool.QueryRow(ctx, `SELECT local_key FROM cdcd.links WHERE external_id = $1`, id).Scan(&key)
			bad("%s: HubSpot contact %s has no linked local row; HubSpot writes: %s; %s", props["email"], id, d.writes(id), d.trail(key))
		}
	}
	slices.Sort(out)
	return out
}

// writes describes the writes HubSpot applied to a contact.
func (d *deployment) writes(id string) string {
	var parts []string
	for _, w := range d.hub.History("contacts", id) {
		delete(w.Properties, "email")
		b, _ := json.Marshal(w.Properties)
		parts = append(parts, fmt.Sprintf("#%d %s %s", w.Seq, w.Op, b))
	}
	return strings.Join(parts, " ")
}

func compactJSON(s string) string {
	var v any
	if json.Unmarshal([]byte(s), &v) != nil {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}
