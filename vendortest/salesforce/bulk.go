package salesforce

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Bulk API 2.0 query jobs ("Bulk API 2.0 Query", Bulk API 2.0 and Bulk API
// Developer Guide): POST /jobs/query creates a job in UploadComplete; GET
// /jobs/query/<id> reports InProgress for Options.BulkPolls reads, then
// JobComplete; GET /jobs/query/<id>/results[?locator=&maxRecords=] answers
// one set of the results as CSV (header row first, every value quoted,
// nulls empty), Sforce-NumberOfRecords, and Sforce-Locator naming the next
// set or "null". A set may be fetched again while the job exists.
// Results come in chunks of Id order, the chunks out of order, as PK
// chunking hands them back; ExpireBulkJobs deletes every job, as
// Salesforce does seven days after it completed.

// bulkQueryRE is the SOQL of a bulk query the double understands: no
// ORDER BY or LIMIT, which disable PK chunking.
var bulkQueryRE = regexp.MustCompile(`(?i)^SELECT\s+(.+?)\s+FROM\s+(\w+)(?:\s+WHERE\s+Id\s*>\s*'(\w*)')?$`)

// bulkChunk is the records of one PK chunk of the double.
const bulkChunk = 1000

// bulkJob is a query job: its results are read when it is created.
type bulkJob struct {
	id, typ, version string
	fields           []string
	rows             [][]any // in result order
	polls            int     // job reads left before JobComplete
	locators         map[string]int
}

func (j *bulkJob) info(state string) map[string]any {
	return map[string]any{
		"id": j.id, "operation": "query", "object": j.typ, "createdById": "005R0000000UyrWIAS",
		"createdDate": "2026-01-02T17:38:59.000+0000", "systemModstamp": "2026-01-02T17:38:59.000+0000",
		"state": state, "concurrencyMode": "Parallel", "contentType": "CSV", "apiVersion": j.version,
		"lineEnding": "LF", "columnDelimiter": "COMMA",
	}
}

// ExpireBulkJobs deletes every query job: reading one, or its results,
// answers 404 NOT_FOUND.
func (s *Server) ExpireBulkJobs() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.bulkJobs)
}

// BulkJobs is how many query jobs were created.
func (s *Server) BulkJobs() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bulkCreated
}

// bulk routes /services/data/<version>/jobs/query[/<id>[/results]]; s.mu
// is held.
func (s *Server) bulk(method, version string, rest []string, query map[string][]string, body []byte) (int, any) {
	switch {
	case len(rest) == 0 && method == http.MethodPost:
		return s.createBulkJob(version, body)
	case len(rest) == 1 && method == http.MethodGet:
		j := s.bulkJobs[rest[0]]
		if j == nil {
			return notFound()
		}
		state := "JobComplete"
		if j.polls > 0 {
			j.polls--
			state = "InProgress"
		}
		info := j.info(state)
		if state == "JobComplete" {
			info["numberRecordsProcessed"] = len(j.rows)
		}
		return http.StatusOK, info
	case len(rest) == 2 && rest[1] == "results" && method == http.MethodGet:
		j := s.bulkJobs[rest[0]]
		switch {
		case j == nil:
			return notFound()
		case j.polls > 0:
			return http.StatusPreconditionFailed, apiError("JOB_NOT_COMPLETE",
				"can only download query results of successfully completed bulk job with status: JOB_COMPLETE. Current status: IN_PROGRESS")
		case j.version != version:
			return http.StatusConflict, apiError("INVALIDJOBSTATE", "use the API version the job was created with")
		}
		return s.bulkResults(j, first(query["locator"]), first(query["maxRecords"]))
	}
	return notFound()
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

func (s *Server) createBulkJob(version string, body []byte) (int, any) {
	var req struct {
		Operation, Query, ContentType, ColumnDelimiter, LineEnding string
	}
	if err := json.Unmarshal(body, &req); err != nil || req.Operation != "query" && req.Operation != "queryAll" {
		return http.StatusBadRequest, apiError("INVALIDJOB", "operation must be query or queryAll")
	}
	if req.ContentType != "" && req.ContentType != "CSV" || req.ColumnDelimiter != "" && req.ColumnDelimiter != "COMMA" || req.LineEnding != "" && req.LineEnding != "LF" {
		return http.StatusBadRequest, apiError("INVALIDJOB", "the double answers CSV, COMMA, LF")
	}
	m := bulkQueryRE.FindStringSubmatch(strings.TrimSpace(req.Query))
	if m == nil {
		return http.StatusBadRequest, apiError("MALFORMED_QUERY", "the double reads SELECT f FROM T [WHERE Id > 'x'], without ORDER BY or LIMIT (they disable PK chunking)")
	}
	typ, fields := m[2], strings.Split(m[1], ",")
	for i := range fields {
		fields[i] = strings.TrimSpace(fields[i])
		if !s.queryable(typ, fields[i]) {
			return http.StatusBadRequest, apiError("INVALID_FIELD", fmt.Sprintf("No such column '%s' on entity '%s'.", fields[i], typ))
		}
	}
	if !s.known(typ) {
		return http.StatusBadRequest, apiError("INVALID_TYPE", fmt.Sprintf("sObject type '%s' is not supported.", typ))
	}
	var ids []string
	for id := range s.records[typ] {
		if id > m[3] && (!s.deleted[id] || req.Operation == "queryAll") {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	// PK chunks in reverse: the results are not in Id order.
	var order []string
	for end := len(ids); end > 0; end -= bulkChunk {
		order = append(order, ids[max(0, end-bulkChunk):end]...)
	}
	s.bulkCreated++
	j := &bulkJob{id: fmt.Sprintf("750R0%010dAAA", s.bulkCreated), typ: typ, version: version, fields: fields,
		polls: s.opts.BulkPolls, locators: map[string]int{}}
	for _, id := range order {
		row := make([]any, len(fields))
		for i, f := range fields {
			row[i] = s.records[typ][id][f]
		}
		j.rows = append(j.rows, row)
	}
	s.bulkJobs[j.id] = j
	return http.StatusOK, j.info("UploadComplete")
}

// bulkResults answers one set of j's results; s.mu is held.
func (s *Server) bulkResults(j *bulkJob, locator, maxRecords string) (int, any) {
	at := 0
	if locator != "" {
		var ok bool
		if at, ok = j.locators[locator]; !ok {
			return http.StatusBadRequest, apiError("INVALID_LOCATOR", "invalid locator: "+locator)
		}
	}
	n := 50000
	if maxRecords != "" {
		v, err := strconv.Atoi(maxRecords)
		if err != nil || v <= 0 {
			return http.StatusBadRequest, apiError("INVALIDMAXRECORDS", "maxRecords must be a positive integer")
		}
		n = v
	}
	end := min(len(j.rows), at+n)
	var b bytes.Buffer
	writeCSV(&b, j.fields, func(string) bool { return true })
	for i, row := range j.rows[at:end] {
		vals := make([]string, len(row))
		quoted := func(k string) bool { return (at+i)%2 == 0 || k != "" } // nulls: "" on even rows, nothing on odd ones
		for k, v := range row {
			vals[k] = csvValue(v)
		}
		writeCSV(&b, vals, quoted)
	}
	next := "null"
	if end < len(j.rows) {
		next = base64.RawStdEncoding.EncodeToString([]byte(strconv.Itoa(end)))
		j.locators[next] = end
	}
	return http.StatusOK, &raw{
		header: http.Header{"Content-Type": {"text/csv"}, "Sforce-Locator": {next}, "Sforce-Numberofrecords": {strconv.Itoa(end - at)}},
		body:   b.Bytes(),
	}
}

// csvValue is a record value as the results write it: empty for null.
func csvValue(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	}
	return fmt.Sprint(v)
}

// writeCSV writes one line, each value whose quote says so quoted.
func writeCSV(b *bytes.Buffer, vals []string, quote func(string) bool) {
	for i, v := range vals {
		if i > 0 {
			b.WriteByte(',')
		}
		if quote(v) {
			b.WriteByte('"')
			b.WriteString(strings.ReplaceAll(v, `"`, `""`))
			b.WriteByte('"')
		} else {
			b.WriteString(v)
		}
	}
	b.WriteByte('\n')
}

// raw is a response that is not JSON.
type raw struct {
	header http.Header
	body   []byte
}
