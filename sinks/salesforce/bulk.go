package salesforce

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/sources/imports"
)

// An import of many records goes through a Bulk API 2.0 query job ("Bulk
// API 2.0 Query", Bulk API 2.0 and Bulk API Developer Guide): created
// with the listing's SOQL (without ORDER BY or LIMIT, which disable PK
// chunking), polled until JobComplete, and read in sets of
// import.bulk_page records (maxRecords), each set's Sforce-Locator naming
// the next ("null" after the last).
//
// The cursor is "bulk:<job id>:<locator>" ("" for the first set), saved
// once the set before is durable: an import stopped while Salesforce runs
// the job, or between sets, resumes with the same job and set. A job
// Salesforce no longer has (deleted seven days after it completed, or
// aborted) is created again and read from its first set. Not from the
// last Id read: the sets of a PK-chunked job are not in Id order. The
// records read again carry the delivery ids they had, which the intake
// drops.
//
// Results are CSV: every value arrives as a JSON string (a number or a
// checkbox too), an empty value as null (Salesforce does not tell an
// empty text from a null one), and "#N/A" as the text it is.

const (
	bulkPrefix = "bulk:"
	// maxResults bounds the bytes of one results set.
	maxResults = 256 << 20
	// bulkPollMin is the first wait between reads of a running job.
	bulkPollMin = 250 * time.Millisecond
)

// jobID is a query job's id, a record id of its own.
var jobID = recordID

// errJobGone reports a query job Salesforce no longer has.
var errJobGone = errors.New("query job gone")

// chooseBulk reports whether an import of object starts a query job:
// import.bulk says so, or import.bulk_above is set and SELECT COUNT()
// finds more records.
func (w *Writer) chooseBulk(ctx context.Context, op, object string) (bool, error) {
	c := w.cfg.Import
	if c.Bulk || c.BulkAbove <= 0 {
		return c.Bulk, nil
	}
	status, h, resp, err := w.call(ctx, http.MethodGet, "/query?"+url.Values{"q": {"SELECT COUNT() FROM " + object}}.Encode(), nil)
	switch {
	case err != nil:
		return false, fmt.Errorf("%s: count: %w", op, err)
	case status != http.StatusOK:
		return false, w.statusError(op+": count", status, h, resp)
	}
	var ans struct {
		TotalSize *int `json:"totalSize"`
	}
	if err := json.Unmarshal(resp, &ans); err != nil || ans.TotalSize == nil {
		return false, fmt.Errorf("%s: the count's answer is not a query result", op)
	}
	return *ans.TotalSize > c.BulkAbove, nil
}

// startBulk creates the query job and returns an empty page whose cursor
// names it, so that the job is saved before it is waited for.
func (w *Writer) startBulk(ctx context.Context, q *listQuery) (imports.Page, error) {
	body, _ := json.Marshal(map[string]string{"operation": "query", "query": q.soql, "contentType": "CSV", "columnDelimiter": "COMMA", "lineEnding": "LF"})
	status, h, resp, err := w.call(ctx, http.MethodPost, "/jobs/query", body)
	switch {
	case err != nil:
		return imports.Page{}, fmt.Errorf("%s: create query job: %w", q.op, err)
	case status != http.StatusOK && status != http.StatusCreated:
		return imports.Page{}, w.statusError(q.op+": create query job", status, h, resp)
	}
	var job struct{ ID string }
	if err := json.Unmarshal(resp, &job); err != nil || !jobID.MatchString(job.ID) {
		return imports.Page{}, fmt.Errorf("%s: create query job: the answer names no job id", q.op)
	}
	w.log.Info().Str("object", strings.TrimPrefix(q.op, "list ")).Str("query_job", job.ID).Msg("bulk query job created")
	return imports.Page{Next: bulkPrefix + job.ID + ":"}, nil
}

// listBulk reads the results set the cursor names, first waiting for the
// job to complete if it is the first set.
func (w *Writer) listBulk(ctx context.Context, q *listQuery, cursor string) (imports.Page, error) {
	job, locator, ok := strings.Cut(strings.TrimPrefix(cursor, bulkPrefix), ":")
	if !ok || !jobID.MatchString(job) {
		return imports.Page{}, cdc.Permanent(fmt.Errorf("%s: the cursor %q names no query job", q.op, cursor))
	}
	p, err := w.bulkSet(ctx, q, job, locator)
	if errors.Is(err, errJobGone) {
		w.log.Warn().Str("query_job", job).Msg("bulk query job gone (expired or aborted); creating it again")
		return w.startBulk(ctx, q)
	}
	return p, err
}

func (w *Writer) bulkSet(ctx context.Context, q *listQuery, job, locator string) (imports.Page, error) {
	if locator == "" {
		if err := w.waitJob(ctx, q.op, job); err != nil {
			return imports.Page{}, err
		}
	}
	v := url.Values{"maxRecords": {strconv.Itoa(w.cfg.Import.BulkPage)}}
	if locator != "" {
		v.Set("locator", locator)
	}
	status, h, resp, err := w.callAccept(ctx, http.MethodGet, "/jobs/query/"+job+"/results?"+v.Encode(), "text/csv", nil, maxResults)
	switch {
	case err != nil:
		return imports.Page{}, fmt.Errorf("%s: read query results: %w", q.op, err)
	case status == http.StatusNotFound:
		return imports.Page{}, errJobGone
	case status != http.StatusOK:
		return imports.Page{}, w.statusError(q.op+": read query results", status, h, resp)
	case len(resp) > maxResults:
		return imports.Page{}, cdc.Permanent(fmt.Errorf("%s: a results set is larger than %d MiB; lower import.bulk_page", q.op, maxResults>>20))
	}
	recs, err := q.parseResults(resp)
	if err != nil {
		return imports.Page{}, err
	}
	if n := h.Get("Sforce-NumberOfRecords"); n != "" && n != strconv.Itoa(len(recs)) {
		return imports.Page{}, fmt.Errorf("%s: the results set holds %d records, Sforce-NumberOfRecords says %s", q.op, len(recs), n)
	}
	p := imports.Page{Records: recs}
	if next := h.Get("Sforce-Locator"); next != "" && next != "null" {
		if next == locator {
			return imports.Page{}, cdc.Permanent(fmt.Errorf("%s: the results set %q names itself as the next one", q.op, locator))
		}
		p.Next = bulkPrefix + job + ":" + next
	}
	return p, nil
}

// waitJob reads the job's state until it is JobComplete, waiting longer
// each time up to import.bulk_poll.
func (w *Writer) waitJob(ctx context.Context, op, job string) error {
	wait := bulkPollMin
	for {
		status, h, resp, err := w.call(ctx, http.MethodGet, "/jobs/query/"+job, nil)
		switch {
		case err != nil:
			return fmt.Errorf("%s: read query job: %w", op, err)
		case status == http.StatusNotFound:
			return errJobGone
		case status != http.StatusOK:
			return w.statusError(op+": read query job", status, h, resp)
		}
		var info struct{ State, ErrorMessage string }
		if err := json.Unmarshal(resp, &info); err != nil {
			return fmt.Errorf("%s: the query job's answer is not a job", op)
		}
		switch info.State {
		case "JobComplete":
			return nil
		case "Aborted":
			return errJobGone
		case "Failed":
			return cdc.Permanent(fmt.Errorf("%s: query job %s failed: %s", op, job, info.ErrorMessage))
		}
		if !cdc.Sleep(ctx, wait) {
			return ctx.Err()
		}
		wait = min(2*wait, w.cfg.Import.BulkPoll)
	}
}

// parseResults reads a results set: a header row of REST field names,
// then one row per record.
func (q *listQuery) parseResults(data []byte) ([]imports.Record, error) {
	rows, err := parseCSV(data)
	if err != nil {
		return nil, fmt.Errorf("%s: the results are not CSV: %w", q.op, err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	head := rows[0]
	names := make([]string, len(head)) // the event's name, "" for a column not asked for
	idCol, modCol := -1, -1
	for i, h := range head {
		names[i] = q.names[h]
		switch h {
		case "Id":
			idCol = i
		case "LastModifiedDate":
			modCol = i
		}
	}
	if idCol < 0 {
		return nil, fmt.Errorf("%s: the results have no Id column", q.op)
	}
	order := make([]int, len(head)) // columns by REST name, as row sorts them
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(head[a], head[b]) })
	recs := make([]imports.Record, 0, len(rows)-1)
	for _, vals := range rows[1:] {
		if len(vals) != len(head) {
			return nil, fmt.Errorf("%s: a results row has %d values for %d columns", q.op, len(vals), len(head))
		}
		if vals[idCol] == "" {
			return nil, fmt.Errorf("%s: a record without an Id", q.op)
		}
		var fields cdc.Row
		for _, i := range order {
			if names[i] == "" {
				continue
			}
			v := []byte("null")
			if vals[i] != "" {
				v = cdc.AppendJSONString(nil, vals[i])
			}
			fields = append(fields, cdc.Field{Name: names[i], Value: v})
		}
		modified := ""
		if modCol >= 0 {
			modified = vals[modCol]
		}
		recs = append(recs, q.record(vals[idCol], modified, fields))
	}
	return recs, nil
}

// parseCSV reads CSV as Bulk API 2.0 writes it (COMMA, LF): a value is
// bare or quoted, a quoted one holds anything, "" for a quote, kept as it
// is (a CR LF in a value stays one). A CR before a row's LF is dropped.
func parseCSV(data []byte) ([][]string, error) {
	var rows [][]string
	var row []string
	var val []byte
	for i := 0; i < len(data); {
		if data[i] == '"' { // a quoted value, up to its closing quote
			i++
			for {
				j := bytes.IndexByte(data[i:], '"')
				if j < 0 {
					return nil, fmt.Errorf("row %d: a quoted value is not closed", len(rows)+1)
				}
				val = append(val, data[i:i+j]...)
				i += j + 1
				if i < len(data) && data[i] == '"' {
					val = append(val, '"')
					i++
					continue
				}
				break
			}
			if i < len(data) && data[i] != ',' && data[i] != '\n' && !(data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n') {
				return nil, fmt.Errorf("row %d: %q after a quoted value", len(rows)+1, data[i])
			}
		} else { // a bare value, up to a comma or the row's end
			j := bytes.IndexAny(data[i:], ",\n\"")
			if j < 0 {
				j = len(data) - i
			}
			if i+j < len(data) && data[i+j] == '"' {
				return nil, fmt.Errorf("row %d: a quote inside a bare value", len(rows)+1)
			}
			val = append(val, bytes.TrimSuffix(data[i:i+j], []byte("\r"))...)
			i += j
		}
		row = append(row, string(val))
		val = val[:0]
		if i < len(data) && data[i] == '\r' {
			i++
		}
		if i < len(data) && data[i] == ',' {
			i++
			if i == len(data) {
				row = append(row, "")
			}
			continue
		}
		rows = append(rows, row) // the row's end: a LF, or the data's
		row = nil
		i++
	}
	if row != nil { // the data ended after a comma
		rows = append(rows, row)
	}
	return rows, nil
}
