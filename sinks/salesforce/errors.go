package salesforce

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/sinks/vendorhttp"
)

// apiError is one error of a Salesforce response. Failed calls name the
// code errorCode; failed records in a collection name it statusCode.
type apiError struct {
	Message    string   `json:"message"`
	ErrorCode  string   `json:"errorCode"`
	StatusCode string   `json:"statusCode"`
	Fields     []string `json:"fields"`
}

func (e apiError) code() string {
	if e.ErrorCode != "" {
		return e.ErrorCode
	}
	return e.StatusCode
}

func (e apiError) String() string {
	s := e.code() + ": " + e.Message
	if len(e.Fields) > 0 {
		s += " (fields " + strings.Join(e.Fields, ", ") + ")"
	}
	return s
}

// transientCodes are the record error codes that a later attempt can
// clear; every other code is permanent (validation, access, duplicates).
var transientCodes = map[string]bool{
	"UNABLE_TO_LOCK_ROW":                true,
	"SERVER_UNAVAILABLE":                true,
	"REQUEST_RUNNING_TOO_LONG":          true,
	"QUERY_TIMEOUT":                     true,
	"ALL_OR_NONE_OPERATION_ROLLED_BACK": true,
	"API_CURRENTLY_DISABLED":            true,
	"REQUEST_LIMIT_EXCEEDED":            true,
}

// recordError classifies the errors of one failed record of a collection.
func recordError(op string, errs []apiError) error {
	if len(errs) == 0 {
		return fmt.Errorf("%s: record failed without an error", op)
	}
	texts := make([]string, len(errs))
	for i, e := range errs {
		texts[i] = e.String()
	}
	err := fmt.Errorf("%s: %s", op, strings.Join(texts, "; "))
	for _, e := range errs {
		if !transientCodes[e.code()] {
			return cdc.Permanent(err)
		}
	}
	return err
}

// concurrentBackoff is how long the account's calls wait after the
// concurrent long-running request limit refused one: that limit counts
// requests running now, and clears as they finish.
const concurrentBackoff = 5 * time.Second

// statusError classifies a failed API call: several matches (300) are
// permanent with the matching ids; REQUEST_LIMIT_EXCEEDED pauses the
// account's limiter, for limit_backoff when the rolling 24-hour allocation
// is exhausted and for seconds when the limit is on concurrent long-running
// requests (ConcurrentPerOrgLongTxn, ConcurrentRequests); a call refused
// with a code a record may also fail with transiently (UNABLE_TO_LOCK_ROW)
// is transient; a 401 that survived a new session is transient; the rest
// as vendorhttp.Classify says, with the Salesforce error code in the text.
// ("API Request Limits and Allocations", Salesforce Developer Limits and
// Allocations Quick Reference; "Status Codes and Error Responses", REST
// API Developer Guide.)
func (w *Writer) statusError(op string, status int, h http.Header, body []byte) error {
	if status == http.StatusMultipleChoices {
		return cdc.Permanent(fmt.Errorf("%s: several records match the external id (%s): ids %s; merge or fix the duplicates in Salesforce",
			op, w.cfg.ExternalIDField, strings.Join(matchIDs(body), ", ")))
	}
	var errs []apiError
	_ = json.Unmarshal(body, &errs)
	if len(errs) == 0 {
		return vendorhttp.Classify(status, h, body, op)
	}
	switch e := errs[0]; {
	case e.code() == "REQUEST_LIMIT_EXCEEDED" && strings.Contains(e.Message, "Concurrent"):
		w.limiter.Pause(concurrentBackoff)
		return cdc.RetryAfter(fmt.Errorf("%s: HTTP %d: %s", op, status, e), concurrentBackoff)
	case e.code() == "REQUEST_LIMIT_EXCEEDED":
		w.limiter.Pause(w.cfg.LimitBackoff)
		err := fmt.Errorf("%s: HTTP %d: %s (%w)", op, status, e, ErrRequestLimit)
		return cdc.RetryAfter(err, w.cfg.LimitBackoff)
	case transientCodes[e.code()]:
		return fmt.Errorf("%s: HTTP %d: %s", op, status, e)
	case status == http.StatusUnauthorized:
		return fmt.Errorf("%s: HTTP %d: %s; a new session was refused too", op, status, e)
	}
	return vendorhttp.Classify(status, h, body, op+" ("+errs[0].code()+")")
}

// missing settles a 404 about the typ record a call named: nil when the
// record is gone (deleted, or never there), or the permanent reason the
// call could not reach it: an external id field that does not exist or
// that field-level security hides, an sObject type that does not exist
// or is hidden. A bare NOT_FOUND says neither, so the type is described
// to tell them apart.
func (w *Writer) missing(ctx context.Context, op, typ string, body []byte) error {
	var errs []apiError
	_ = json.Unmarshal(body, &errs)
	if len(errs) > 0 {
		switch e := errs[0]; {
		case e.code() == "ENTITY_IS_DELETED":
			return nil
		case strings.Contains(strings.ToLower(e.Message), "external id field"):
			return cdc.Permanent(fmt.Errorf("%s: HTTP 404: %s; check external_id_field (%s) and that cdcd's Salesforce user may read it (field-level security)",
				op, e, w.cfg.ExternalIDField))
		}
	}
	if _, ok := w.objects.Load(typ); ok {
		return nil
	}
	status, h, resp, err := w.call(ctx, http.MethodGet, "/sobjects/"+url.PathEscape(typ), nil)
	switch {
	case err != nil:
		return err
	case status == http.StatusOK:
		w.objects.Store(typ, true)
		return nil
	case status == http.StatusNotFound:
		return cdc.Permanent(fmt.Errorf("%s: sObject type %s does not exist or cdcd's Salesforce user may not see it; check object in the pipeline and the user's profile", op, typ))
	}
	return w.statusError(op, status, h, resp)
}

// matchIDs returns the record ids of a 300 response, a list of record
// URLs (or of objects with an Id or url).
func matchIDs(body []byte) []string {
	var items []json.RawMessage
	if json.Unmarshal(body, &items) != nil {
		return nil
	}
	ids := make([]string, 0, len(items))
	for _, it := range items {
		var s string
		if json.Unmarshal(it, &s) == nil {
			ids = append(ids, path.Base(s))
			continue
		}
		var o struct {
			ID         string `json:"Id"`
			Attributes struct {
				URL string `json:"url"`
			} `json:"attributes"`
		}
		if json.Unmarshal(it, &o) == nil {
			if o.ID == "" && o.Attributes.URL != "" {
				o.ID = path.Base(o.Attributes.URL)
			}
			ids = append(ids, o.ID)
		}
	}
	return ids
}
