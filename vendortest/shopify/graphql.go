package shopify

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"time"
)

var (
	idempotentKey = regexp.MustCompile(`@idempotent\(\s*key:\s*(?:\$(\w+)|"([^"]*)")\s*\)`)
	reasons       = map[string]bool{
		"correction": true, "cycle_count_available": true, "damaged": true, "movement_created": true,
		"movement_updated": true, "movement_received": true, "movement_canceled": true, "other": true,
		"promotion": true, "quality_control": true, "received": true, "reservation_created": true,
		"reservation_deleted": true, "reservation_updated": true, "restock": true, "safety_stock": true, "shrinkage": true,
	}
)

type userError struct {
	Code    string   `json:"code"`
	Field   []string `json:"field"`
	Message string   `json:"message"`
}

// graphql serves inventorySetQuantities. Versions from 2026-04 require the
// @idempotent directive and changeFromQuantity (null opts out); earlier
// ones take compareQuantity unless ignoreCompareQuantity is true. A repeat
// of an idempotency key returns the first response without applying
// anything.
func (s *Server) graphql(w http.ResponseWriter, version string, body []byte) {
	var req struct {
		Query     string                     `json:"query"`
		Variables map[string]json.RawMessage `json:"variables"`
	}
	if json.Unmarshal(body, &req) != nil {
		gqlErrors(w, "invalid JSON", "BAD_REQUEST")
		return
	}
	if !strings.Contains(req.Query, "inventorySetQuantities") {
		if strings.Contains(req.Query, "inventoryLevel(") {
			s.levelQuery(w, req.Variables)
			return
		}
		gqlErrors(w, "this double serves only inventorySetQuantities and inventoryItem.inventoryLevel", "BAD_REQUEST")
		return
	}
	key := ""
	if m := idempotentKey.FindStringSubmatch(req.Query); m != nil {
		key = m[2]
		if m[1] != "" {
			json.Unmarshal(req.Variables[m[1]], &key)
		}
	}
	if key == "" && version >= "2026-04" {
		gqlErrors(w, "The @idempotent directive is required for this mutation.", "BAD_REQUEST")
		return
	}
	vars := string(req.Variables["input"])
	if key != "" {
		// "Implementing idempotency", shopify.dev/docs/api/usage/implementing-idempotency;
		// the codes of InventorySetQuantitiesUserErrorCode.
		prev, seen := s.replies[key]
		switch {
		case s.running[key]:
			idempotencyError(w, "IDEMPOTENCY_CONCURRENT_REQUEST", "This request is currently in progress, please try again.")
			return
		case seen && prev.vars != vars:
			idempotencyError(w, "IDEMPOTENCY_KEY_PARAMETER_MISMATCH", "The same idempotency key cannot be used with different operation parameters.")
			return
		case seen && prev.failed:
			idempotencyError(w, "IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED", "A previous request with this idempotency key failed. Retry with a new idempotency key.")
			return
		case seen:
			w.Header().Set("Content-Type", "application/json")
			w.Write(prev.body)
			return
		}
		if d := s.slow; d > 0 {
			s.slow = 0
			s.running[key] = true
			s.mu.Unlock()
			time.Sleep(d)
			s.mu.Lock()
			delete(s.running, key)
		}
	}
	if s.failNext {
		s.failNext = false
		if key != "" {
			s.replies[key] = reply{vars: vars, failed: true}
		}
		writeJSON(w, http.StatusOK, map[string]any{"errors": []map[string]any{{"message": "Internal error. Looks like something went wrong on our end.",
			"extensions": map[string]string{"code": "INTERNAL_SERVER_ERROR"}}}})
		return
	}
	var in struct {
		Name                  string `json:"name"`
		Reason                string `json:"reason"`
		IgnoreCompareQuantity bool   `json:"ignoreCompareQuantity"`
		Quantities            []struct {
			InventoryItemID    string `json:"inventoryItemId"`
			LocationID         string `json:"locationId"`
			Quantity           int64  `json:"quantity"`
			CompareQuantity    *int64 `json:"compareQuantity"`
			ChangeFromQuantity *int64 `json:"changeFromQuantity"`
		} `json:"quantities"`
	}
	var present struct { // which keys each quantity has: null differs from omitted
		Quantities []map[string]json.RawMessage `json:"quantities"`
	}
	json.Unmarshal(req.Variables["input"], &present)
	if err := json.Unmarshal(req.Variables["input"], &in); err != nil {
		gqlErrors(w, "Variable $input of type InventorySetQuantitiesInput! was provided invalid value", "BAD_REQUEST")
		return
	}
	var errs []userError
	fail := func(code, msg string, field ...string) { errs = append(errs, userError{code, field, msg}) }
	if in.Name != "available" && in.Name != "on_hand" {
		fail("INVALID_NAME", "The quantity name must be either 'available' or 'on_hand'.", "input", "name")
	}
	if !reasons[in.Reason] {
		fail("INVALID_REASON", "The specified reason is invalid.", "input", "reason")
	}
	type change struct {
		k [2]string
		q int64
	}
	var changes []change
	for i, q := range in.Quantities {
		item, okItem := strings.CutPrefix(q.InventoryItemID, "gid://shopify/InventoryItem/")
		loc, okLoc := strings.CutPrefix(q.LocationID, "gid://shopify/Location/")
		cur, stocked := s.levels[[2]string{item, loc}]
		var expect *int64
		check := true
		if version >= "2026-04" {
			if _, ok := present.Quantities[i]["changeFromQuantity"]; !ok {
				fail("CHANGE_FROM_QUANTITY_REQUIRED", "changeFromQuantity must be given for each quantity, or null to skip the check.")
				continue
			}
			expect = q.ChangeFromQuantity
			check = expect != nil
		} else if !in.IgnoreCompareQuantity {
			if expect = q.CompareQuantity; expect == nil {
				fail("COMPARE_QUANTITY_REQUIRED", "The compareQuantity argument must be given to each quantity or ignored using ignoreCompareQuantity.")
				continue
			}
		} else {
			check = false
		}
		switch {
		case !okItem:
			fail("INVALID_INVENTORY_ITEM", "The specified inventory item could not be found.")
		case !okLoc:
			fail("INVALID_LOCATION", "The specified location could not be found.")
		case !stocked:
			fail("ITEM_NOT_STOCKED_AT_LOCATION", "The specified inventory item is not stocked at the location.")
		case q.Quantity < 0:
			fail("INVALID_QUANTITY_NEGATIVE", "The quantity can't be negative.")
		case check && *expect != cur && version >= "2026-04":
			fail("CHANGE_FROM_QUANTITY_STALE", "The changeFromQuantity value does not match the persisted value.")
		case check && *expect != cur:
			fail("COMPARE_QUANTITY_STALE", "The compareQuantity value does not match persisted value.")
		default:
			if q.Quantity != cur {
				changes = append(changes, change{[2]string{item, loc}, q.Quantity})
			}
		}
	}
	payload := map[string]any{"inventoryAdjustmentGroup": nil, "userErrors": []userError{}}
	if len(errs) > 0 {
		payload["userErrors"] = errs
	} else if len(changes) > 0 {
		for _, c := range changes {
			s.levels[c.k] = c.q
		}
		payload["inventoryAdjustmentGroup"] = map[string]any{"createdAt": s.now().UTC().Format(time.RFC3339)}
	}
	resp, _ := json.Marshal(map[string]any{
		"data": map[string]any{"inventorySetQuantities": payload},
		"extensions": map[string]any{"cost": map[string]any{"requestedQueryCost": 10, "actualQueryCost": 10,
			"throttleStatus": map[string]any{"maximumAvailable": 2000, "currentlyAvailable": 1990, "restoreRate": 100}}},
	})
	if key != "" {
		s.replies[key] = reply{vars: vars, body: resp}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(resp)
}

// levelQuery serves inventoryItem(id: $item) { inventoryLevel(locationId:
// $location) { quantities(names: ["available"]) { name quantity } } }: a
// null inventoryLevel when the item is not stocked there.
func (s *Server) levelQuery(w http.ResponseWriter, vars map[string]json.RawMessage) {
	var item, loc string
	json.Unmarshal(vars["item"], &item)
	json.Unmarshal(vars["location"], &loc)
	item = strings.TrimPrefix(item, "gid://shopify/InventoryItem/")
	loc = strings.TrimPrefix(loc, "gid://shopify/Location/")
	var level any
	if q, ok := s.levels[[2]string{item, loc}]; ok {
		level = map[string]any{"quantities": []any{map[string]any{"name": "available", "quantity": q}}}
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{"inventoryItem": map[string]any{"inventoryLevel": level}}})
}

func idempotencyError(w http.ResponseWriter, code, msg string) {
	writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{"inventorySetQuantities": map[string]any{
		"inventoryAdjustmentGroup": nil, "userErrors": []userError{{Code: code, Field: []string{"idempotencyKey"}, Message: msg}}}}})
}

func gqlErrors(w http.ResponseWriter, msg, code string) {
	writeJSON(w, http.StatusOK, map[string]any{"errors": []map[string]any{{"message": msg, "extensions": map[string]string{"code": code}}}})
}
