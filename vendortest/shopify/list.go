package shopify

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// restList serves GET inventory_levels.json: the levels at location_ids
// (comma-separated, required), in item order, limit a page (default 50,
// at most 250), the next page behind a Link header's page_info. As
// Shopify does, a request with page_info may carry limit and nothing
// else (400 otherwise), and a level carries no updated_at unless set
// through the API.
func (s *Server) restList(w http.ResponseWriter, q url.Values) {
	if !s.take(w) {
		return
	}
	limit := 50
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 250 {
			writeJSON(w, http.StatusBadRequest, map[string]any{"errors": map[string]string{"limit": "must be between 1 and 250"}})
			return
		}
		limit = n
	}
	var locations []string
	after := ""
	if pi := q.Get("page_info"); pi != "" {
		for k := range q {
			if k != "page_info" && k != "limit" {
				writeJSON(w, http.StatusBadRequest, map[string]any{"errors": map[string]string{"page_info": "page_info cannot be combined with " + k}})
				return
			}
		}
		raw, err := base64.RawURLEncoding.DecodeString(pi)
		locs, last, ok := strings.Cut(string(raw), "|")
		if err != nil || !ok {
			writeJSON(w, http.StatusBadRequest, map[string]any{"errors": map[string]string{"page_info": "Invalid value."}})
			return
		}
		locations, after = strings.Split(locs, ","), last
	} else {
		if q.Get("location_ids") == "" && q.Get("inventory_item_ids") == "" {
			writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"errors": map[string]string{"base": "location_ids or inventory_item_ids must be present"}})
			return
		}
		locations = strings.Split(q.Get("location_ids"), ",")
	}
	var keys [][2]string
	for k := range s.levels {
		if slices.Contains(locations, k[1]) {
			keys = append(keys, k)
		}
	}
	order := func(k [2]string) string { return fmt.Sprintf("%020s|%020s", k[0], k[1]) }
	slices.SortFunc(keys, func(a, b [2]string) int { return strings.Compare(order(a), order(b)) })
	var page []map[string]any
	for _, k := range keys {
		if after != "" && order(k) <= after {
			continue
		}
		if len(page) == limit {
			pi := base64.RawURLEncoding.EncodeToString([]byte(strings.Join(locations, ",") + "|" + order(keys[slices.Index(keys, k)-1])))
			next := url.Values{"limit": {strconv.Itoa(limit)}, "page_info": {pi}}
			w.Header().Set("Link", fmt.Sprintf(`<%s/admin/api/%s/inventory_levels.json?%s>; rel="next"`, s.srv.URL, s.version, next.Encode()))
			break
		}
		item, _ := strconv.ParseInt(k[0], 10, 64)
		loc, _ := strconv.ParseInt(k[1], 10, 64)
		page = append(page, map[string]any{"inventory_item_id": item, "location_id": loc, "available": s.levels[k],
			"admin_graphql_api_id": "gid://shopify/InventoryLevel/" + k[1] + "?inventory_item_id=" + k[0]})
	}
	if page == nil {
		page = []map[string]any{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"inventory_levels": page})
}
