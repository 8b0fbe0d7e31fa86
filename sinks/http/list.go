package http

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/sinks/vendorhttp"
	"github.com/cdcd-dev/cdcd/sources/imports"
)

var _ imports.Lister = (*Writer)(nil)

// lister is a parsed List.
type lister struct {
	List
	url    *template.Template
	origin string // scheme://host of the first page: every page must be there
}

func newLister(l *List) *lister {
	t, _ := l.template() // checked by Validate
	u, _ := url.Parse(literalPrefix(l.URL))
	return &lister{List: *l, url: t, origin: u.Scheme + "://" + u.Host}
}

// List reads one page of the system's records as its list: section says,
// the cursor being the URL of the page (the first page's when empty). A
// record's fields are the members of its JSON object, values as sent. A
// next page on another host than the first is refused, since it would
// receive the system's credentials. It implements imports.Lister.
func (w *Writer) List(ctx context.Context, object string, _ []string, cursor string) (imports.Page, error) {
	l := w.list
	if l == nil {
		return imports.Page{}, cdc.Permanent(errors.New("list: the system has no list: section; add one saying how its records are listed"))
	}
	var b strings.Builder
	if err := l.url.Execute(&b, struct{ Object string }{url.PathEscape(object)}); err != nil {
		return imports.Page{}, cdc.Permanent(fmt.Errorf("list: render list.url: %w", err))
	}
	first, err := l.page(b.String())
	if err != nil {
		return imports.Page{}, err
	}
	u := first
	if cursor != "" {
		if u, err = l.page(cursor); err != nil {
			return imports.Page{}, err
		}
		restore(u, first.Query())
	}
	if err := w.limiter.Wait(ctx); err != nil {
		return imports.Page{}, err
	}
	status, header, body, err := w.do(ctx, newOperation("list", http.MethodGet), u, nil, "")
	if err != nil {
		return imports.Page{}, err
	}
	if !w.succeeded(status) {
		err := vendorhttp.Classify(status, header, body, "list "+u.Host)
		if d, ok := cdc.RetryAfterOf(err); ok {
			w.limiter.Pause(d)
		}
		return imports.Page{}, err
	}
	p, err := l.read(u, header, body)
	if err == nil && p.Next != "" {
		p.Next = conceal(p.Next, first.Query())
	}
	return p, err
}

// fromListURL starts the fragment of a cursor that names the parameters
// of its query left out since list.url gives them.
const fromListURL = "from-list-url="

// conceal leaves out of a next page's URL, the cursor saved in the job,
// the parameters of list.url's query it repeats with the same values (an
// api_key, say): the cursor is shown by `cdcd jobs show`, the jobs API and
// any pipeline reading the jobs table. It names them in its fragment, which
// is never sent, for restore.
func conceal(next string, listed url.Values) string {
	u, err := url.Parse(next)
	if err != nil || len(listed) == 0 {
		return next
	}
	q := u.Query()
	var names []string
	for _, name := range slices.Sorted(maps.Keys(listed)) {
		if slices.Equal(q[name], listed[name]) {
			q.Del(name)
			names = append(names, url.QueryEscape(name))
		}
	}
	if len(names) == 0 {
		return next
	}
	u.RawQuery = q.Encode()
	u.Fragment = fromListURL + strings.Join(names, ",")
	return u.String()
}

// restore puts back in u the parameters conceal left out, from list.url's
// query.
func restore(u *url.URL, listed url.Values) {
	names, ok := strings.CutPrefix(u.Fragment, fromListURL)
	if !ok {
		return
	}
	u.Fragment, u.RawFragment = "", ""
	q := u.Query()
	for _, name := range strings.Split(names, ",") {
		if n, err := url.QueryUnescape(name); err == nil && listed.Has(n) {
			q[n] = listed[n]
		}
	}
	u.RawQuery = q.Encode()
}

// page parses a page's URL and checks it is on the first page's host.
func (l *lister) page(target string) (*url.URL, error) {
	u, err := url.Parse(target)
	if err != nil || u.Scheme+"://"+u.Host != l.origin {
		return nil, cdc.Permanent(fmt.Errorf("list: a page's URL is not on %s; check list.url and what the system answers as the next page", l.origin))
	}
	return u, nil
}

// read decodes a page answered for u.
func (l *lister) read(u *url.URL, header http.Header, body []byte) (imports.Page, error) {
	bad := func(format string, args ...any) (imports.Page, error) {
		return imports.Page{}, cdc.Permanent(fmt.Errorf("list "+u.Host+": "+format, args...))
	}
	if !json.Valid(body) {
		return bad("the answer is not JSON")
	}
	raw, _ := lookup(body, l.RecordsPath)
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return bad("no array of records at records_path %q", l.RecordsPath)
	}
	var p imports.Page
	idPath := cmp.Or(l.IDPath, "id")
	ids := 0
	for i, item := range items {
		var members map[string]json.RawMessage
		if err := json.Unmarshal(item, &members); err != nil || members == nil {
			return bad("record %d is not a JSON object", i)
		}
		v, _ := lookup(item, idPath)
		id := text(v) // none: the import rejects the record alone
		if id != "" {
			ids++
		}
		rec := imports.Record{ID: id}
		for _, n := range slices.Sorted(maps.Keys(members)) {
			rec.Fields = append(rec.Fields, cdc.Field{Name: n, Value: compact(members[n])})
		}
		if l.UpdatedAtPath != "" {
			v, _ := lookup(item, l.UpdatedAtPath)
			rec.UpdatedAt = when(v)
		}
		p.Records = append(p.Records, rec)
	}
	if len(items) > 0 && ids == 0 {
		return bad("no record has an id at id_path %q", idPath)
	}
	more, said := true, false
	if l.HasMorePath != "" {
		if v, ok := lookup(body, l.HasMorePath); ok {
			v = bytes.TrimSpace(v)
			more, said = string(v) != "false", string(v) == "true"
		}
	}
	// An empty page ends the listing, unless the answer says more follow:
	// an API that filters a page after reading it can answer an empty one
	// in the middle.
	if !more || len(items) == 0 && !said {
		return p, nil
	}
	next, err := l.next(u, header, body, len(items))
	if err != nil {
		return imports.Page{}, err
	}
	if next == "" && said {
		where := "at next_path " + strconv.Quote(l.NextPath)
		if l.Pagination == PageLink {
			where = "in a Link header"
		}
		return bad("has_more_path says more records follow, but the answer has no next page %s", where)
	}
	p.Next = next
	return p, nil
}

// next returns the URL of the page after u, "" when there is none.
func (l *lister) next(u *url.URL, header http.Header, body []byte, n int) (string, error) {
	with := func(v string) string {
		q := u.Query()
		q.Set(l.param(), v)
		nu := *u
		nu.RawQuery = q.Encode()
		return nu.String()
	}
	resolve := func(ref string) (string, error) {
		r, err := u.Parse(ref)
		if err != nil {
			return "", cdc.Permanent(fmt.Errorf("list %s: the next page's URL does not parse", u.Host))
		}
		if _, err := l.page(r.String()); err != nil {
			return "", err
		}
		return r.String(), nil
	}
	switch l.Pagination {
	case PageCursor:
		v, _ := lookup(body, l.NextPath)
		if c := text(v); c != "" {
			return with(c), nil
		}
	case PageOffset, PagePage:
		at, err := strconv.Atoi(cmp.Or(u.Query().Get(l.param()), map[string]string{PageOffset: "0", PagePage: "1"}[l.Pagination]))
		if err != nil {
			return "", cdc.Permanent(fmt.Errorf("list %s: %s is not a number", u.Host, l.param()))
		}
		if l.Pagination == PageOffset {
			return with(strconv.Itoa(at + n)), nil
		}
		return with(strconv.Itoa(at + 1)), nil
	case PageURL:
		v, _ := lookup(body, l.NextPath)
		if ref := text(v); ref != "" {
			return resolve(ref)
		}
	case PageLink:
		if ref := vendorhttp.NextLink(header); ref != "" {
			return resolve(ref)
		}
	}
	return "", nil
}

// lookup returns the JSON at a dot-separated path of keys ("" is the
// whole document).
func lookup(doc json.RawMessage, path string) (json.RawMessage, bool) {
	if path == "" {
		return doc, true
	}
	for _, k := range strings.Split(path, ".") {
		var m map[string]json.RawMessage
		if json.Unmarshal(doc, &m) != nil {
			return nil, false
		}
		v, ok := m[k]
		if !ok {
			return nil, false
		}
		doc = v
	}
	return doc, true
}

// text is a JSON string's value or a number's text; "" otherwise.
func text(v json.RawMessage) string {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(v, &n) == nil {
		return n.String()
	}
	return ""
}

// when reads an RFC 3339 string, or Unix seconds or milliseconds; the
// zero time when it is neither.
func when(v json.RawMessage) time.Time {
	s := text(v)
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC()
	}
	f, err := strconv.ParseFloat(s, 64)
	switch {
	case err != nil || f <= 0:
		return time.Time{}
	case f >= 1e11: // milliseconds: seconds this large are past the year 5000
		return time.UnixMilli(int64(f)).UTC()
	}
	return time.Unix(int64(f), int64((f-float64(int64(f)))*1e9)).UTC()
}

func compact(v json.RawMessage) json.RawMessage {
	var b bytes.Buffer
	if json.Compact(&b, v) != nil {
		return v
	}
	return b.Bytes()
}
