package salesforce

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// queryRE is the SOQL the double understands: fields of one type, in Id
// order, optionally after an Id and limited.
var queryRE = regexp.MustCompile(`(?i)^SELECT\s+(.+?)\s+FROM\s+(\w+)(?:\s+WHERE\s+Id\s*>\s*'(\w*)')?\s+ORDER\s+BY\s+Id(?:\s+ASC)?(?:\s+LIMIT\s+(\d+))?$`)

// countRE is SELECT COUNT() FROM <type>, which answers totalSize alone.
var countRE = regexp.MustCompile(`(?i)^SELECT\s+COUNT\(\)\s+FROM\s+(\w+)$`)

// query serves GET /query?q=<SOQL> and GET /query/<locator>: the records
// of a type in Id order, QueryBatch (default 2000) a response, the rest
// behind nextRecordsUrl. A queried field a record lacks is null; an
// unknown field (not on any record of the type, nor Id) answers 400
// INVALID_FIELD, as do hidden ones. Locators expire when
// ExpireLocators is set, as Salesforce's do after 15 minutes unused;
// s.mu is held.
func (s *Server) query(version string, locator string, q url.Values) (int, any) {
	var st *cursor
	if locator != "" {
		st = s.locators[locator]
		if st == nil || s.opts.ExpireLocators {
			return http.StatusBadRequest, apiError("INVALID_QUERY_LOCATOR", "invalid query locator")
		}
		delete(s.locators, locator)
	} else if m := countRE.FindStringSubmatch(strings.TrimSpace(q.Get("q"))); m != nil {
		if !s.known(m[1]) {
			return http.StatusBadRequest, apiError("INVALID_TYPE", fmt.Sprintf("sObject type '%s' is not supported.", m[1]))
		}
		n := 0
		for id := range s.records[m[1]] {
			if !s.deleted[id] {
				n++
			}
		}
		return http.StatusOK, map[string]any{"totalSize": n, "done": true, "records": []any{}}
	} else {
		m := queryRE.FindStringSubmatch(strings.TrimSpace(q.Get("q")))
		if m == nil {
			return http.StatusBadRequest, apiError("MALFORMED_QUERY", "unexpected token: the double reads SELECT f FROM T [WHERE Id > 'x'] ORDER BY Id [LIMIT n]")
		}
		fields := strings.Split(m[1], ",")
		for i := range fields {
			fields[i] = strings.TrimSpace(fields[i])
			if !s.queryable(m[2], fields[i]) {
				return http.StatusBadRequest, apiError("INVALID_FIELD", fmt.Sprintf("No such column '%s' on entity '%s'.", fields[i], m[2]))
			}
		}
		if !s.known(m[2]) {
			return http.StatusBadRequest, apiError("INVALID_TYPE", fmt.Sprintf("sObject type '%s' is not supported.", m[2]))
		}
		var ids []string
		for id := range s.records[m[2]] {
			if id > m[3] && !s.deleted[id] {
				ids = append(ids, id)
			}
		}
		slices.Sort(ids)
		if m[4] != "" {
			n, _ := strconv.Atoi(m[4])
			ids = ids[:min(n, len(ids))]
		}
		st = &cursor{typ: m[2], fields: fields, ids: ids, total: len(ids)}
	}
	batch := s.opts.QueryBatch
	if batch <= 0 {
		batch = 2000
	}
	n := min(batch, len(st.ids))
	recs := make([]map[string]any, 0, n)
	for _, id := range st.ids[:n] {
		r := map[string]any{"attributes": map[string]any{"type": st.typ, "url": "/services/data/" + version + "/sobjects/" + st.typ + "/" + id}}
		for _, f := range st.fields {
			v, ok := s.records[st.typ][id][f]
			if !ok {
				v = nil
			}
			r[f] = v
		}
		recs = append(recs, r)
	}
	st.ids = st.ids[n:]
	out := map[string]any{"totalSize": st.total, "done": len(st.ids) == 0, "records": recs}
	if len(st.ids) > 0 {
		s.nextLocator++
		loc := fmt.Sprintf("01gD0000002HU6K%03d-%d", s.nextLocator, st.total-len(st.ids))
		s.locators[loc] = st
		out["nextRecordsUrl"] = "/services/data/" + version + "/query/" + loc
	}
	return http.StatusOK, out
}

// cursor is an open query's remaining records.
type cursor struct {
	typ    string
	fields []string
	ids    []string
	total  int
}

// queryable reports whether a query may name field on typ.
func (s *Server) queryable(typ, field string) bool {
	if slices.Contains(s.opts.Hidden[typ], field) {
		return false
	}
	if field == "Id" || field == "LastModifiedDate" || field == "CreatedDate" || field == "SystemModstamp" {
		return true
	}
	for _, r := range s.records[typ] {
		if _, ok := r[field]; ok {
			return true
		}
	}
	return slices.Contains(s.opts.Required[typ], field)
}
