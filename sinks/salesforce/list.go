package salesforce

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/sources/imports"
)

var _ imports.Lister = (*Writer)(nil)

// listLimit is the records one page of a listing asks for.
const listLimit = 2000

var (
	recordID   = regexp.MustCompile(`^[A-Za-z0-9]{15}([A-Za-z0-9]{3})?$`)
	identifier = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)
)

// List reads one page of object's records (the writer's object when
// empty) by a SOQL query in Id order after the cursor, the last Id of
// the page before:
//
//	SELECT Id, LastModifiedDate, <fields> FROM <object> WHERE Id > '<cursor>' ORDER BY Id LIMIT 2000
//
// Each page is a query of its own rather than the query locator of
// nextRecordsUrl: a locator expires 15 minutes after its last use and
// holds one of the org's few open cursors, while a query by Id resumes
// days later. Fields are named as change events name them (see
// retrieve); UpdatedAt is LastModifiedDate. With import.bulk, or more
// than import.bulk_above records, the import goes through a Bulk API 2.0
// query job instead (see listBulk), its cursors "bulk:<job>:<locator>".
// It implements imports.Lister.
func (w *Writer) List(ctx context.Context, object string, fields []string, cursor string) (imports.Page, error) {
	if object == "" {
		object = w.cfg.Object
	}
	op := "list " + object
	bulk := strings.HasPrefix(cursor, bulkPrefix)
	switch {
	case !identifier.MatchString(object):
		return imports.Page{}, cdc.Permanent(fmt.Errorf("%s: %q is not an sObject name", op, object))
	case cursor != "" && !bulk && !recordID.MatchString(cursor):
		return imports.Page{}, cdc.Permanent(fmt.Errorf("%s: the cursor %q is not a record Id", op, cursor))
	case len(fields) == 0:
		return imports.Page{}, cdc.Permanent(errors.New(op + ": name the fields to list (the pipeline's map)"))
	}
	q, err := newListQuery(op, object, fields)
	if err != nil {
		return imports.Page{}, err
	}
	if cursor == "" {
		if bulk, err = w.chooseBulk(ctx, op, object); err != nil {
			return imports.Page{}, err
		}
		if bulk {
			return w.startBulk(ctx, q)
		}
	}
	if bulk {
		return w.listBulk(ctx, q, cursor)
	}
	soql := q.soql
	if cursor != "" {
		soql += " WHERE Id > '" + cursor + "'"
	}
	soql += fmt.Sprintf(" ORDER BY Id LIMIT %d", listLimit)
	status, h, resp, err := w.call(ctx, http.MethodGet, "/query?"+url.Values{"q": {soql}}.Encode(), nil)
	switch {
	case err != nil:
		return imports.Page{}, fmt.Errorf("%s: %w", op, err)
	case status != http.StatusOK:
		return imports.Page{}, w.statusError(op, status, h, resp)
	}
	var ans struct {
		Done    bool                         `json:"done"`
		Records []map[string]json.RawMessage `json:"records"`
	}
	if err := json.Unmarshal(resp, &ans); err != nil {
		return imports.Page{}, fmt.Errorf("%s: the answer is not a query result: %w", op, err)
	}
	var p imports.Page
	for _, rec := range ans.Records {
		var id, modified string
		if json.Unmarshal(rec["Id"], &id) != nil || id == "" {
			return imports.Page{}, fmt.Errorf("%s: a record without an Id", op)
		}
		_ = json.Unmarshal(rec["LastModifiedDate"], &modified)
		p.Records = append(p.Records, q.record(id, modified, row(rec, q.names)))
	}
	if n := len(p.Records); n > 0 && (!ans.Done || n == listLimit) {
		p.Next = p.Records[n-1].ID
	}
	return p, nil
}

// listQuery is what a listing asks for.
type listQuery struct {
	op     string
	fields []string          // as the pipeline names them
	names  map[string]string // REST name → event name
	soql   string            // SELECT Id, LastModifiedDate, <fields> FROM <object>
}

func newListQuery(op, object string, fields []string) (*listQuery, error) {
	q := &listQuery{op: op, fields: fields, names: map[string]string{"Id": "Id", "LastModifiedDate": "LastModifiedDate"}}
	rest := []string{"Id", "LastModifiedDate"}
	for _, f := range fields {
		r := restField(f)
		if !identifier.MatchString(r) {
			return nil, cdc.Permanent(fmt.Errorf("%s: %q is not a field name", op, f))
		}
		if !slices.Contains(rest, r) {
			rest = append(rest, r)
		}
		q.names[r] = f
	}
	q.soql = "SELECT " + strings.Join(rest, ", ") + " FROM " + object
	return q, nil
}

// record is a listed record with the fields the pipeline asked for (Id
// and LastModifiedDate only if it named them).
func (q *listQuery) record(id, modified string, fields cdc.Row) imports.Record {
	r := imports.Record{ID: id, UpdatedAt: salesforceTime(modified)}
	for _, f := range fields {
		if f.Name != "Id" && f.Name != "LastModifiedDate" || slices.Contains(q.fields, f.Name) {
			r.Fields = append(r.Fields, f)
		}
	}
	return r
}

// salesforceTime reads a datetime as the REST API writes it
// (2026-01-02T03:04:05.000+0000); the zero time when it is not one.
func salesforceTime(s string) time.Time {
	for _, layout := range []string{"2006-01-02T15:04:05.000-0700", time.RFC3339Nano} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

// Lists reports that Salesforce systems list their records
// (config.Lister).
func (c *Config) Lists() bool { return true }
