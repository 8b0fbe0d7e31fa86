// Package shopify sets inventory levels in a Shopify shop, one record per
// call: compare-and-set through GraphQL inventorySetQuantities (default),
// or a plain set through REST inventory_levels/set.json.
//
// Compare-and-set sends the quantity Shopify is expected to hold (the
// record's previous value). When Shopify holds another, and not already
// the new quantity, a sale or another system changed it since: the write fails with an error that wraps
// ErrCompareMismatch and is cdc.Permanent, because resending the same
// expectation can never succeed; the change is dead-lettered unless a
// conflict handler settles it first (errors.Is(err, ErrCompareMismatch)).
//
// Each compare-and-set carries an idempotency key derived from the event
// id and the level (API versions 2026-01 and later), so a retry after a
// lost response returns the first outcome instead of a false mismatch.
// Before 2026-01, or after Shopify's retention window for keys, such a
// retry is refused as stale: cdcd then reads the level, and a level that
// already holds the quantity is success, not a mismatch. A retry while the first attempt still runs
// (IDEMPOTENCY_CONCURRENT_REQUEST) waits and asks again with the same
// key; a key Shopify says is spent (IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED)
// is replaced by a new one for the next attempt.
//
// The request shape follows the API version Shopify says it served
// (X-Shopify-API-Version), which is newer than the configured one once
// that is retired. A frozen (402) or locked (423) shop and a refused token
// (401) hold the shop's changes, retried every few minutes, instead of
// dead-lettering them.
package shopify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/ratelimit"
	"github.com/cdcd-dev/cdcd/sinks/vendorhttp"
	"github.com/cdcd-dev/cdcd/syncapi"
)

// ErrCompareMismatch means Shopify's quantity differs from the one the
// record expected: Shopify changed since the previous sync.
var ErrCompareMismatch = errors.New("shopify quantity differs from the expected previous quantity")

// Writer sets inventory levels. It implements syncapi.Writer, one record
// per call.
type Writer struct {
	cfg    Config
	base   string
	client *http.Client
	limit  *ratelimit.Limiter
	log    zerolog.Logger
	served atomic.Pointer[string] // the API version Shopify serves, when not the configured one
	keys   sync.Map               // idempotency key base → generation, after a failed attempt
}

var _ syncapi.Writer = (*Writer)(nil)

// EveryChange reports whether writes compare against each change's previous
// quantity (compare_and_set): two changes merged into one would compare
// against the wrong quantity, so the pipeline must not coalesce them.
func (w *Writer) EveryChange() bool { return w.cfg.Mode == ModeCompareAndSet }

// New validates cfg and returns a writer that waits on the limiter
// env.Limiters holds for the shop (a private one when env.Limiters is
// nil). It does not connect.
func New(name string, cfg *Config, env config.Env) (*Writer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	base := strings.TrimSuffix(cfg.baseURL(), "/")
	return &Writer{
		cfg:    *cfg,
		base:   base,
		client: vendorhttp.Client(cfg.Timeout),
		limit:  env.Limiters.For("shopify:"+strings.TrimPrefix(strings.TrimPrefix(base, "https://"), "http://"), cfg.Rate),
		log:    env.Log,
	}, nil
}

// level is one inventory level to set.
type level struct {
	item, location string // numeric ids
	available      int64
	compare        *int64 // nil: no expectation
	eventID        string
}

// Write sets one level per record. Result.ExternalID is the inventory
// item id and Result.Version Shopify's timestamp of the change. A record
// without usable ids or quantities, 4xx answers but 401, 402 and 423, and
// GraphQL user errors but the idempotency ones are permanent; 429 (after
// its Retry-After), throttling, 5xx, 401, 402 and 423 are retried.
func (w *Writer) Write(ctx context.Context, records []syncapi.Record) ([]syncapi.Result, error) {
	results := make([]syncapi.Result, len(records))
	for i := range records {
		r := &records[i]
		if r.Op == cdc.OpDelete && w.cfg.OnDelete == "ignore" {
			continue
		}
		lv, err := w.level(r)
		if err != nil {
			results[i].Err = cdc.Permanent(err)
			continue
		}
		results[i].ExternalID = lv.item
		if w.cfg.Mode == ModeSet {
			results[i].Version, results[i].Err = w.setREST(ctx, lv)
		} else {
			results[i].Version, results[i].Err = w.compareAndSet(ctx, lv)
		}
	}
	return results, nil
}

func (w *Writer) level(r *syncapi.Record) (*level, error) {
	lv := &level{}
	if r.Event != nil {
		lv.eventID = r.Event.ID()
	}
	var err error
	if lv.item, err = id(r.Fields[w.cfg.ItemField], "InventoryItem"); err != nil {
		return nil, fmt.Errorf("field %s: %w", w.cfg.ItemField, err)
	}
	loc := any(w.cfg.LocationID)
	if w.cfg.LocationField != "" {
		loc = r.Fields[w.cfg.LocationField]
	}
	if lv.location, err = id(loc, "Location"); err != nil {
		return nil, fmt.Errorf("location: %w", err)
	}
	if r.Op != cdc.OpDelete {
		if lv.available, err = quantity(r.Fields[w.cfg.AvailableField]); err != nil {
			return nil, fmt.Errorf("field %s: %w", w.cfg.AvailableField, err)
		}
	}
	if w.cfg.Mode == ModeSet {
		return lv, nil
	}
	prev, ok := r.Fields[w.cfg.CompareField]
	if (!ok || prev == nil) && w.cfg.CompareColumn != "" && r.Event != nil {
		if raw, found := r.Event.Before.Get(w.cfg.CompareColumn); found && !cdc.IsNull(raw) {
			ok, prev = true, json.Number(strings.Trim(string(raw), `"`))
		}
	}
	switch {
	case ok && prev != nil:
		c, err := quantity(prev)
		if err != nil {
			return nil, fmt.Errorf("previous quantity: %w", err)
		}
		lv.compare = &c
	case r.Op == cdc.OpUpdate || r.Op == cdc.OpDelete:
		return nil, fmt.Errorf("no previous quantity to compare with: map it to %s, or set compare_column and REPLICA IDENTITY FULL on the table, or use mode set", w.cfg.CompareField)
	}
	// A create or a snapshot read has nothing to compare with: it sets.
	return lv, nil
}

// id returns the numeric id in v: a number, a numeric string or a
// gid://shopify/<kind>/<n>.
func id(v any, kind string) (string, error) {
	var s string
	switch v := v.(type) {
	case string:
		s = strings.TrimPrefix(v, "gid://shopify/"+kind+"/")
	case json.Number:
		s = v.String()
	case float64:
		if v != math.Trunc(v) || v > 1<<53 {
			return "", fmt.Errorf("%v is not an id", v)
		}
		s = strconv.FormatInt(int64(v), 10)
	case nil:
		return "", fmt.Errorf("missing")
	default:
		return "", fmt.Errorf("a %T is not an id", v)
	}
	if _, err := strconv.ParseUint(s, 10, 64); err != nil {
		return "", fmt.Errorf("not a numeric id or gid://shopify/%s/<id>", kind)
	}
	return s, nil
}

// quantity returns the whole number in v.
func quantity(v any) (int64, error) {
	switch v := v.(type) {
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
			return int64(v), nil
		}
	case json.Number, string:
		if n, err := strconv.ParseInt(fmt.Sprint(v), 10, 64); err == nil {
			return n, nil
		}
	case int:
		return int64(v), nil
	case int64:
		return v, nil
	case nil:
		return 0, fmt.Errorf("missing")
	}
	return 0, fmt.Errorf("not a whole number")
}
