package shopify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
)

// API versions whose inventorySetQuantities behaves differently: 2026-01
// takes the @idempotent directive, 2026-04 requires it and replaces
// compareQuantity with changeFromQuantity. "unstable" sorts after both.
const (
	versionIdempotent = "2026-01"
	versionChangeFrom = "2026-04"
)

const setQuantitiesMutation = `mutation cdcdSetAvailable($input: InventorySetQuantitiesInput!%s) {
  inventorySetQuantities(input: $input)%s {
    inventoryAdjustmentGroup { createdAt }
    userErrors { code field message }
  }
}`

type gqlResponse struct {
	Data struct {
		InventorySetQuantities *struct {
			InventoryAdjustmentGroup *struct {
				CreatedAt string `json:"createdAt"`
			} `json:"inventoryAdjustmentGroup"`
			UserErrors []struct {
				Code    string   `json:"code"`
				Field   []string `json:"field"`
				Message string   `json:"message"`
			} `json:"userErrors"`
		} `json:"inventorySetQuantities"`
	} `json:"data"`
	Errors []struct {
		Message    string `json:"message"`
		Extensions struct {
			Code string `json:"code"`
		} `json:"extensions"`
	} `json:"errors"`
	Extensions struct {
		Cost struct {
			RequestedQueryCost float64 `json:"requestedQueryCost"`
			ThrottleStatus     struct {
				CurrentlyAvailable float64 `json:"currentlyAvailable"`
				RestoreRate        float64 `json:"restoreRate"`
			} `json:"throttleStatus"`
		} `json:"cost"`
	} `json:"extensions"`
}

// compareAndSet sets the level if Shopify holds lv.compare (or
// unconditionally when lv.compare is nil) and returns the adjustment's
// createdAt. When Shopify answers with a newer API version than the one
// the request was shaped for (fall-forward) and refuses the shape, the
// call is made once more in the served version's shape.
func (w *Writer) compareAndSet(ctx context.Context, lv *level) (string, error) {
	for attempt := 0; ; attempt++ {
		v := w.version()
		at, err := w.setQuantities(ctx, lv, v)
		if err != nil && attempt == 0 && w.version() != v && !errors.Is(err, ErrCompareMismatch) {
			continue
		}
		return at, err
	}
}

// idempotency user error codes ("Implementing idempotency",
// shopify.dev/docs/api/usage/implementing-idempotency).
const (
	codeConcurrent     = "IDEMPOTENCY_CONCURRENT_REQUEST"
	codePreviousFailed = "IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED"
	codeKeyMismatch    = "IDEMPOTENCY_KEY_PARAMETER_MISMATCH"
)

// setQuantities makes one inventorySetQuantities call shaped for API
// version v.
func (w *Writer) setQuantities(ctx context.Context, lv *level, v string) (string, error) {
	const op = "set shopify inventory quantity"
	q := map[string]any{
		"inventoryItemId": "gid://shopify/InventoryItem/" + lv.item,
		"locationId":      "gid://shopify/Location/" + lv.location,
		"quantity":        lv.available,
	}
	input := map[string]any{"name": "available", "reason": w.cfg.Reason, "quantities": []any{q}}
	if v >= versionChangeFrom {
		q["changeFromQuantity"] = lv.compare // null opts out of the check
	} else if lv.compare != nil {
		q["compareQuantity"] = *lv.compare
	} else {
		input["ignoreCompareQuantity"] = true
	}
	vars := map[string]any{"input": input}
	decl, directive, base := "", "", ""
	if v >= versionIdempotent {
		decl, directive = ", $idempotencyKey: String!", " @idempotent(key: $idempotencyKey)"
		base = idempotencyBase(lv)
		vars["idempotencyKey"] = w.idempotencyKey(base)
	}
	body, err := w.post(ctx, "graphql.json", map[string]any{
		"query":     fmt.Sprintf(setQuantitiesMutation, decl, directive),
		"variables": vars,
	}, op)
	if err != nil {
		return "", err
	}
	var resp gqlResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		return "", fmt.Errorf("%s: decode response: %w", op, err)
	}
	if len(resp.Errors) > 0 {
		return "", w.topLevelError(op, &resp)
	}
	res := resp.Data.InventorySetQuantities
	if res == nil {
		return "", fmt.Errorf("%s: response has no inventorySetQuantities", op)
	}
	if len(res.UserErrors) > 0 {
		var msgs []string
		codes := map[string]bool{}
		for _, ue := range res.UserErrors {
			codes[ue.Code] = true
			msgs = append(msgs, fmt.Sprintf("%s (%s)", ue.Message, ue.Code))
		}
		err := fmt.Errorf("%s: %s", op, strings.Join(msgs, "; "))
		switch {
		case codes[codeConcurrent]:
			// The first attempt still runs: ask again with the same key,
			// which then returns its outcome.
			return "", cdc.RetryAfter(err, time.Second)
		case codes[codePreviousFailed] || codes[codeKeyMismatch]:
			// The key is spent: the next attempt carries a new one.
			w.keys.Store(base, w.generation(base)+1)
			return "", err
		case codes["COMPARE_QUANTITY_STALE"] || codes["CHANGE_FROM_QUANTITY_STALE"]:
			// Shopify may already hold the quantity: this change applied by
			// an attempt whose answer was lost, its key unknown (before
			// 2026-01) or forgotten (past the retention window).
			if cur, ok := w.available(ctx, lv); ok && cur == lv.available {
				return "", nil
			}
			err = fmt.Errorf("%w: %w", ErrCompareMismatch, err)
		}
		return "", cdc.Permanent(err)
	}
	if base != "" {
		w.keys.Delete(base)
	}
	if g := res.InventoryAdjustmentGroup; g != nil {
		return g.CreatedAt, nil
	}
	return "", nil // the quantity already had that value: nothing to adjust
}

const levelQuery = `query cdcdAvailable($item: ID!, $location: ID!) {
  inventoryItem(id: $item) {
    inventoryLevel(locationId: $location) { quantities(names: ["available"]) { name quantity } }
  }
}`

// available reads the quantity Shopify holds for lv's level; ok is false
// when it cannot be read.
func (w *Writer) available(ctx context.Context, lv *level) (int64, bool) {
	body, err := w.post(ctx, "graphql.json", map[string]any{"query": levelQuery, "variables": map[string]any{
		"item": "gid://shopify/InventoryItem/" + lv.item, "location": "gid://shopify/Location/" + lv.location}}, "read shopify inventory quantity")
	if err != nil {
		return 0, false
	}
	var resp struct {
		Data struct {
			InventoryItem *struct {
				InventoryLevel *struct {
					Quantities []struct {
						Name     string `json:"name"`
						Quantity int64  `json:"quantity"`
					} `json:"quantities"`
				} `json:"inventoryLevel"`
			} `json:"inventoryItem"`
		} `json:"data"`
	}
	if json.Unmarshal(body, &resp) != nil || resp.Data.InventoryItem == nil || resp.Data.InventoryItem.InventoryLevel == nil {
		return 0, false
	}
	for _, q := range resp.Data.InventoryItem.InventoryLevel.Quantities {
		if q.Name == "available" {
			return q.Quantity, true
		}
	}
	return 0, false
}

// topLevelError classifies GraphQL errors: throttling waits for the cost
// bucket to refill, internal errors are transient, the rest permanent.
func (w *Writer) topLevelError(op string, resp *gqlResponse) error {
	var msgs []string
	codes := map[string]bool{}
	for _, e := range resp.Errors {
		msgs = append(msgs, e.Message)
		codes[e.Extensions.Code] = true
	}
	err := fmt.Errorf("%s: %s", op, strings.Join(msgs, "; "))
	switch {
	case codes["THROTTLED"]:
		c := resp.Extensions.Cost
		wait := time.Second
		if rate := c.ThrottleStatus.RestoreRate; rate > 0 {
			need := c.RequestedQueryCost - c.ThrottleStatus.CurrentlyAvailable
			wait = max(wait, time.Duration(math.Ceil(need/rate))*time.Second)
		}
		w.limit.Pause(wait)
		return cdc.RetryAfter(err, wait)
	case codes["INTERNAL_SERVER_ERROR"]:
		return err
	}
	return cdc.Permanent(err)
}

// idempotencyBase identifies the change: the event and the level, so the
// same change always derives the same key.
func idempotencyBase(lv *level) string {
	cmp := "-"
	if lv.compare != nil {
		cmp = strconv.FormatInt(*lv.compare, 10)
	}
	return strings.Join([]string{lv.eventID, lv.item, lv.location, strconv.FormatInt(lv.available, 10), cmp}, "\x00")
}

func (w *Writer) generation(base string) int {
	if g, ok := w.keys.Load(base); ok {
		return g.(int)
	}
	return 0
}

// idempotencyKey derives a UUID from the change and its key generation:
// the same for every retry of the change, until Shopify says the key is
// spent (a previous attempt failed inside Shopify), then a new one. After
// a restart the generation starts over, and the spent key is refused once
// more before the next.
func (w *Writer) idempotencyKey(base string) string {
	sum := sha256.Sum256([]byte(base + "\x00" + strconv.Itoa(w.generation(base))))
	b := sum[:16]
	b[6] = b[6]&0x0f | 0x50
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
