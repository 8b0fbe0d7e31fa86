package httpapi

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Paging is how a GET of a collection path (one that holds no resource
// but has resources below it) lists them, in the order of their paths.
// Limits above MaxLimit are cut to it without a word, and a request
// without limit gets 20, as many APIs do.
//
//   - "cursor" (the default): ?cursor=<opaque>&limit=N answers
//     {"data": [...], "meta": {"next_cursor": "...", "has_more": true}};
//     the last page has has_more false and no next_cursor at all.
//   - "offset": ?offset=N&limit=N answers {"data": [...], "total": N};
//     the page after the last is empty.
//   - "link": ?page=N&per_page=N answers a bare JSON array, and a Link
//     header with rel="next" (a path only: clients resolve it) unless
//     it is the last page; the link keeps the request's other parameters
//     as sent, commas unescaped (?fields=id,name).
//
// Hidden, when set, names resources a page leaves out while they still
// take their place in it, as APIs do that filter a page after reading
// it (permissions, soft deletes): such a page may hold fewer records than
// asked, or none, while more follow (has_more true, a next cursor or
// link).
type Paging struct {
	Style    string
	MaxLimit int
	Hidden   func(path string) bool
}

// collection reports whether path holds no resource but has some below
// it; s.mu is held.
func (s *Server) collection(path string) bool {
	path = strings.TrimSuffix(path, "/")
	if _, ok := s.resources[path]; ok {
		return false
	}
	for p := range s.resources {
		if strings.HasPrefix(p, path+"/") {
			return true
		}
	}
	return false
}

// list answers a GET of a collection; s.mu is held.
func (s *Server) list(path string, q url.Values) (int, http.Header, []byte) {
	path = strings.TrimSuffix(path, "/")
	var paths []string
	for p := range s.resources {
		if rest, ok := strings.CutPrefix(p, path+"/"); ok && !strings.Contains(rest, "/") {
			paths = append(paths, p)
		}
	}
	slices.Sort(paths)
	maxLimit := s.opts.Paging.MaxLimit
	if maxLimit <= 0 {
		maxLimit = 100
	}
	num := func(name string, def int) (int, bool) {
		v := q.Get(name)
		if v == "" {
			return def, true
		}
		n, err := strconv.Atoi(v)
		return n, err == nil && n >= 0
	}
	// page returns the resources listed in the page of limit places from
	// from, and how many places it took.
	page := func(from, limit int) ([]map[string]any, int) {
		out := []map[string]any{}
		i := from
		for ; i < len(paths) && i < from+limit; i++ {
			if h := s.opts.Paging.Hidden; h == nil || !h(paths[i]) {
				out = append(out, s.resources[paths[i]])
			}
		}
		return out, i - from
	}
	bad := func(msg string) (int, http.Header, []byte) { return http.StatusBadRequest, nil, errorBody(msg) }
	switch s.opts.Paging.Style {
	case "offset":
		off, ok1 := num("offset", 0)
		limit, ok2 := num("limit", 20)
		if !ok1 || !ok2 || limit == 0 {
			return bad("offset and limit must be non-negative integers, limit at least 1")
		}
		data, _ := page(off, min(limit, maxLimit))
		b, _ := json.Marshal(map[string]any{"data": data, "total": len(paths)})
		return http.StatusOK, nil, b
	case "link":
		n, ok1 := num("page", 1)
		per, ok2 := num("per_page", 20)
		if !ok1 || !ok2 || n == 0 || per == 0 {
			return bad("page and per_page must be positive integers")
		}
		per = min(per, maxLimit)
		data, _ := page((n-1)*per, per)
		b, _ := json.Marshal(data)
		var h http.Header
		if n*per < len(paths) {
			next := url.Values{}
			for k, v := range q { // the request's other parameters, as GitHub's links keep them
				next[k] = v
			}
			next.Set("page", strconv.Itoa(n+1))
			next.Set("per_page", strconv.Itoa(per))
			h = http.Header{"Link": {fmt.Sprintf(`<%s?%s>; rel="next"`, path, nextQuery(next))}}
		}
		return http.StatusOK, h, b
	}
	limit, ok := num("limit", 20)
	if !ok || limit == 0 {
		return bad("limit must be a positive integer")
	}
	from := 0
	if c := q.Get("cursor"); c != "" {
		after, err := base64.RawURLEncoding.DecodeString(c)
		if err != nil {
			return bad("cursor is not one this API gave")
		}
		from, _ = slices.BinarySearch(paths, string(after)+"\x00")
	}
	data, took := page(from, min(limit, maxLimit))
	meta := map[string]any{"has_more": from+took < len(paths)}
	if from+took < len(paths) {
		meta["next_cursor"] = base64.RawURLEncoding.EncodeToString([]byte(paths[from+took-1]))
	}
	b, _ := json.Marshal(map[string]any{"data": data, "meta": meta})
	return http.StatusOK, nil, b
}

// nextQuery encodes q as a link's query, commas left as they are, as
// servers write them.
func nextQuery(q url.Values) string {
	return strings.ReplaceAll(q.Encode(), "%2C", ",")
}
