package salesforce

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"

	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/ratelimit"
	"github.com/cdcd-dev/cdcd/sinks/vendorhttp"
	"github.com/cdcd-dev/cdcd/syncapi"
)

// MaxBatch is the most records one Write takes: the sObject Collections
// limit.
const MaxBatch = 200

// Writer writes records to one Salesforce org. It is safe for concurrent
// use.
//
// Creates and updates of one sObject type are upserted by external id in
// one sObject Collections call (allOrNone false), with one Result per
// record: validation errors are permanent, lock contention
// (UNABLE_TO_LOCK_ROW) transient. A delete needs the record id: the
// record's ExternalID (its link), or else a lookup by the external id in
// Fields. A record already gone counts as deleted; several records
// matching one external id is permanent, with their ids in the error.
//
// An exhausted daily allocation (REQUEST_LIMIT_EXCEEDED) pauses every call
// of the account for limit_backoff and fails the batch's remaining
// records with a RetryAfter of that length.
type Writer struct {
	cfg      Config
	log      zerolog.Logger
	client   *http.Client
	limiter  *ratelimit.Limiter
	tokens   tokens
	key      *rsa.PrivateKey // jwt only
	audience string
	objects  sync.Map // sObject types known to exist
}

var _ syncapi.Batcher = (*Writer)(nil)

// New validates c, reads the JWT key if any, and builds the writer of
// system name. Its calls wait on limiters.For(c.Account, c.Rate); nil
// limiters gives the writer a limiter of its own. New does not connect.
func New(name string, c *Config, log zerolog.Logger, limiters *ratelimit.Limiters) (*Writer, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	w := &Writer{cfg: *c, log: log, audience: c.Auth.Audience}
	if c.Auth.Type == "jwt" {
		key, err := loadKey(c.Auth)
		if err != nil {
			return nil, err
		}
		w.key = key
		if w.audience == "" {
			w.audience = defaultAudience(c.LoginURL)
		}
	}
	w.tokens.fetch = w.fetchToken
	account := c.Account
	if account == "" {
		base := c.InstanceURL
		if base == "" {
			base = c.LoginURL
		}
		u, _ := url.Parse(base)
		account = "salesforce:" + u.Host
	}
	w.limiter = limiters.For(account, c.Rate)
	w.client = vendorhttp.Client(0)
	return w, nil
}

// MaxBatch is 200, the sObject Collections limit.
func (w *Writer) MaxBatch() int { return MaxBatch }

// Write upserts the batch's creates and updates, one collection call per
// sObject type, then deletes its deletes one call each. It returns an
// error only when ctx ends.
func (w *Writer) Write(ctx context.Context, records []syncapi.Record) ([]syncapi.Result, error) {
	results := make([]syncapi.Result, len(records))
	upserts := map[string][]int{} // sObject type → record indexes
	var types []string
	var deletes []int
	for i := range records {
		if records[i].Op == cdc.OpDelete {
			deletes = append(deletes, i)
			continue
		}
		typ := w.object(&records[i])
		if upserts[typ] == nil {
			types = append(types, typ)
		}
		upserts[typ] = append(upserts[typ], i)
	}
	var stop error // set once the account's allocation is exhausted
	for _, typ := range types {
		if stop == nil {
			stop = w.upsert(ctx, typ, records, upserts[typ], results)
		} else {
			fill(results, upserts[typ], stop)
		}
	}
	for _, i := range deletes {
		if stop != nil {
			fill(results, []int{i}, stop)
			continue
		}
		results[i].ExternalID, results[i].Err = w.delete(ctx, &records[i])
		if isLimit(results[i].Err) {
			stop = results[i].Err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	w.log.Debug().Int("records", len(records)).Int("deletes", len(deletes)).Msg("batch written")
	return results, nil
}

func (w *Writer) object(r *syncapi.Record) string {
	if r.Object != "" {
		return r.Object
	}
	return w.cfg.Object
}

// upsert writes the records at idx, all of sObject type typ, in one
// collection call and fills their results. It returns the call's error if
// the allocation is exhausted.
func (w *Writer) upsert(ctx context.Context, typ string, records []syncapi.Record, idx []int, results []syncapi.Result) error {
	op := "upsert " + typ
	field := w.cfg.ExternalIDField
	recs := make([]map[string]any, 0, len(idx))
	var sent []int
	for _, i := range idx {
		r := &records[i]
		results[i].ExternalID = r.ExternalID
		if v, ok := r.Fields[field]; !ok || v == nil || v == "" {
			results[i].Err = cdc.Permanent(fmt.Errorf("%s: the record has no value for the external id field %s; map one", op, field))
			continue
		}
		rec := make(map[string]any, len(r.Fields)+1)
		for k, v := range r.Fields {
			rec[k] = v
		}
		rec["attributes"] = map[string]string{"type": typ}
		recs = append(recs, rec)
		sent = append(sent, i)
	}
	if len(sent) == 0 {
		return nil
	}
	return w.upsertSome(ctx, op, typ, recs, sent, results)
}

// upsertSome writes recs (those of records[idx]) in one collection call.
// A call refused whole with a 400 (one record not well formed: a date
// field given a timestamp, a field hidden by field-level security) is
// split in halves and each half written again, so only the records at
// fault fail.
func (w *Writer) upsertSome(ctx context.Context, op, typ string, recs []map[string]any, idx []int, results []syncapi.Result) error {
	data, err := json.Marshal(struct {
		AllOrNone bool             `json:"allOrNone"`
		Records   []map[string]any `json:"records"`
	}{Records: recs})
	if err != nil {
		fill(results, idx, cdc.Permanent(fmt.Errorf("%s: encode records: %w", op, err)))
		return nil
	}
	path := "/composite/sobjects/" + url.PathEscape(typ) + "/" + url.PathEscape(w.cfg.ExternalIDField)
	status, h, resp, err := w.call(ctx, http.MethodPatch, path, data)
	if err == nil && status != http.StatusOK {
		err = w.statusError(op, status, h, resp)
		if status == http.StatusBadRequest && len(idx) > 1 && cdc.IsPermanent(err) {
			if field := unknownColumn(resp); field != "" {
				// Every record holding the field fails; the rest go again.
				var keepRecs []map[string]any
				var keep []int
				for k, rec := range recs {
					if _, ok := rec[field]; ok {
						results[idx[k]].Err = err
						continue
					}
					keepRecs, keep = append(keepRecs, rec), append(keep, idx[k])
				}
				if len(keep) < len(idx) {
					if len(keep) == 0 {
						return nil
					}
					return w.upsertSome(ctx, op, typ, keepRecs, keep, results)
				}
			}
			half := len(idx) / 2
			if err := w.upsertSome(ctx, op, typ, recs[:half], idx[:half], results); err != nil {
				fill(results, idx[half:], err)
				return err
			}
			return w.upsertSome(ctx, op, typ, recs[half:], idx[half:], results)
		}
	}
	if err != nil {
		fill(results, idx, err)
		if isLimit(err) {
			return err
		}
		return nil
	}
	var out []struct {
		ID      string     `json:"id"`
		Success bool       `json:"success"`
		Created bool       `json:"created"`
		Errors  []apiError `json:"errors"`
	}
	if err := json.Unmarshal(resp, &out); err != nil || len(out) != len(idx) {
		fill(results, idx, fmt.Errorf("%s: unreadable response (%d results for %d records)", op, len(out), len(idx)))
		return nil
	}
	for k, i := range idx {
		if out[k].Success {
			results[i].ExternalID = out[k].ID
		} else {
			results[i].Err = recordError(op, out[k].Errors)
		}
	}
	return nil
}

// noSuchColumn finds the field of an INVALID_FIELD refusal: a field that
// does not exist or that field-level security hides from cdcd's user.
var noSuchColumn = regexp.MustCompile(`No such column '([^']+)'`)

// unknownColumn returns the field a whole-request INVALID_FIELD names,
// or "".
func unknownColumn(body []byte) string {
	var errs []apiError
	if json.Unmarshal(body, &errs) != nil || len(errs) == 0 || errs[0].code() != "INVALID_FIELD" {
		return ""
	}
	if m := noSuchColumn.FindStringSubmatch(errs[0].Message); m != nil {
		return m[1]
	}
	return ""
}

// delete deletes the record r names and returns its id.
func (w *Writer) delete(ctx context.Context, r *syncapi.Record) (string, error) {
	typ := w.object(r)
	op := "delete " + typ
	id := r.ExternalID
	if id == "" {
		var err error
		if id, err = w.lookup(ctx, typ, r); id == "" {
			return "", err // nil: there is nothing to delete
		}
	}
	status, h, resp, err := w.call(ctx, http.MethodDelete, "/sobjects/"+url.PathEscape(typ)+"/"+url.PathEscape(id), nil)
	switch {
	case err != nil:
		return id, err
	case status == http.StatusNoContent || status == http.StatusOK:
		return id, nil
	case status == http.StatusNotFound:
		return id, w.missing(ctx, op, typ, resp) // nil: deleted already
	}
	return id, w.statusError(op, status, h, resp)
}

// lookup finds the id of r's record by its external id; "" and nil when
// there is none.
func (w *Writer) lookup(ctx context.Context, typ string, r *syncapi.Record) (string, error) {
	op := "delete " + typ
	field := w.cfg.ExternalIDField
	v, ok := r.Fields[field]
	if !ok || v == nil || v == "" {
		return "", cdc.Permanent(fmt.Errorf("%s: no link to the record and no %s value to find it by", op, field))
	}
	value, _ := v.(string)
	if value == "" {
		b, _ := json.Marshal(v)
		value = strings.Trim(string(b), `"`)
	}
	path := "/sobjects/" + url.PathEscape(typ) + "/" + url.PathEscape(field) + "/" + url.PathEscape(value) + "?fields=Id"
	status, h, resp, err := w.call(ctx, http.MethodGet, path, nil)
	switch {
	case err != nil:
		return "", err
	case status == http.StatusNotFound:
		return "", w.missing(ctx, op, typ, resp) // nil: no such record
	case status != http.StatusOK:
		return "", w.statusError(op, status, h, resp)
	}
	var rec struct {
		ID string `json:"Id"`
	}
	if json.Unmarshal(resp, &rec) != nil || rec.ID == "" {
		return "", fmt.Errorf("%s: lookup by %s answered without an Id", op, field)
	}
	return rec.ID, nil
}

func fill(results []syncapi.Result, idx []int, err error) {
	for _, i := range idx {
		results[i].Err = err
	}
}

// ErrRequestLimit is wrapped by the errors of calls refused because the
// org's daily API allocation is exhausted.
var ErrRequestLimit = errors.New("daily API allocation exhausted")

func isLimit(err error) bool { return errors.Is(err, ErrRequestLimit) }
