package http

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/internal/jsonvalue"
	"github.com/cdcd-dev/cdcd/ratelimit"
	"github.com/cdcd-dev/cdcd/sinks/vendorhttp"
	"github.com/cdcd-dev/cdcd/syncapi"
)

// maxResponse bounds the response bytes read.
const maxResponse = 1 << 20

// Writer writes records to a REST API, one request per record. It is safe
// for concurrent use.
type Writer struct {
	name    string
	log     zerolog.Logger
	client  *http.Client
	limiter *ratelimit.Limiter
	ops     map[string]*operation // "create", "update", "delete"
	headers http.Header
	auth    Auth
	success map[int]bool // nil: any 2xx
	idem    string
	idPath  []string
	timeout time.Duration
	list    *lister // nil: no list: section
}

type operation struct {
	name   string
	method string
	url    *template.Template
	body   *template.Template // nil: JSON of Fields, or no body for delete
}

var _ syncapi.Batcher = (*Writer)(nil)

// New validates c and builds the writer of system name. Its requests wait
// on limiters.For(c.Account, c.Rate); nil limiters gives the writer a
// limiter of its own. New does not connect.
func New(name string, c *Config, log zerolog.Logger, limiters *ratelimit.Limiters) (*Writer, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	w := &Writer{
		name:    name,
		log:     log,
		ops:     map[string]*operation{},
		headers: http.Header{},
		auth:    c.Auth,
		idem:    c.IdempotencyHeader,
		timeout: c.Timeout,
	}
	if c.IDPath != "" {
		w.idPath = strings.Split(c.IDPath, ".")
	}
	if c.List != nil {
		w.list = newLister(c.List)
	}
	for k, v := range c.Headers {
		w.headers.Set(k, v)
	}
	if len(c.SuccessCodes) > 0 {
		w.success = map[int]bool{}
		for _, code := range c.SuccessCodes {
			w.success[code] = true
		}
	}
	for name, r := range map[string]*Request{"create": c.Create, "update": c.Update, "delete": c.Delete} {
		if r == nil {
			continue
		}
		op := &operation{name: name, method: r.Method}
		op.url, _ = parseURLTemplate(name+".url", r.URL) // parsed by Validate
		if r.Body != "" {
			op.body, _ = parseBodyTemplate(name+".body", r.Body)
		}
		w.ops[name] = op
	}
	account := c.Account
	if account == "" {
		account = "http:" + name
	}
	w.limiter = limiters.For(account, c.Rate)
	w.client = vendorhttp.Client(0)
	return w, nil
}

// MaxBatch is 1: one request per record.
func (w *Writer) MaxBatch() int { return 1 }

// Write sends each record's request in turn. It returns an error only when
// ctx ends.
func (w *Writer) Write(ctx context.Context, records []syncapi.Record) ([]syncapi.Result, error) {
	results := make([]syncapi.Result, len(records))
	for i := range records {
		r := &records[i]
		id, err := w.write(ctx, r)
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		results[i] = syncapi.Result{ExternalID: id, Err: err}
	}
	w.log.Debug().Int("records", len(records)).Msg("batch written")
	return results, nil
}

// pick returns the operation for r: a delete, an update of a linked
// record, or a create; one of create and update stands in for the other.
func (w *Writer) pick(r *syncapi.Record) (*operation, error) {
	if r.Op == cdc.OpDelete {
		if op := w.ops["delete"]; op != nil {
			return op, nil
		}
		return nil, cdc.Permanent(errors.New("delete: no delete request is configured for this system"))
	}
	first, second := w.ops["create"], w.ops["update"]
	if r.ExternalID != "" {
		first, second = second, first
	}
	if first != nil {
		return first, nil
	}
	return second, nil
}

// write sends one record and returns its external id.
func (w *Writer) write(ctx context.Context, r *syncapi.Record) (string, error) {
	op, err := w.pick(r)
	if err != nil {
		return r.ExternalID, err
	}
	v := newView(op.name, r)
	target, err := render(op.url, v)
	if err != nil {
		return r.ExternalID, cdc.Permanent(fmt.Errorf("render %s url: %w", op.name, err))
	}
	u, err := url.Parse(string(target))
	if err != nil {
		return r.ExternalID, cdc.Permanent(fmt.Errorf("%s: rendered url does not parse; check %s.url", op.name, op.name))
	}
	var body []byte
	switch {
	case op.body != nil:
		body, err = render(op.body, v)
	case op.name != "delete":
		body, err = jsonvalue.Marshal(v.Fields)
	}
	if err != nil {
		return r.ExternalID, cdc.Permanent(fmt.Errorf("render %s body: %w", op.name, err))
	}
	if err := w.limiter.Wait(ctx); err != nil {
		return r.ExternalID, err
	}
	status, header, resp, err := w.do(ctx, op, u, body, v.EventID)
	if err != nil {
		return r.ExternalID, err
	}
	if !w.succeeded(status) {
		if op.name == "delete" && (status == http.StatusNotFound || status == http.StatusGone) {
			return r.ExternalID, nil
		}
		err := vendorhttp.Classify(status, header, resp, op.name+" "+u.Host)
		if d, ok := cdc.RetryAfterOf(err); ok {
			w.limiter.Pause(d) // the whole account waits, not only this record
		}
		return r.ExternalID, err
	}
	if id := extractID(resp, w.idPath); id != "" && op.name != "delete" {
		return id, nil
	}
	return r.ExternalID, nil
}

// do sends one request. A transport failure or timeout is a transient
// error naming the operation and host, never the URL (it holds record
// values).
func (w *Writer) do(ctx context.Context, op *operation, u *url.URL, body []byte, eventID string) (int, http.Header, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, op.method, u.String(), rd)
	if err != nil {
		return 0, nil, nil, cdc.Permanent(fmt.Errorf("%s: build request: %w", op.name, err))
	}
	for k, v := range w.headers {
		req.Header[k] = v
	}
	if body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if w.idem != "" && eventID != "" {
		req.Header.Set(w.idem, eventID)
	}
	w.auth.authenticate(req, body, time.Now())
	resp, err := w.client.Do(req)
	if err != nil {
		return 0, nil, nil, vendorhttp.TransportError(op.name+" "+u.Host, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("%s %s: read response: %w", op.name, u.Host, err)
	}
	return resp.StatusCode, resp.Header, data, nil
}

func (w *Writer) succeeded(status int) bool {
	if w.success != nil {
		return w.success[status]
	}
	return status >= 200 && status < 300
}

// extractID returns the string or number at path in a JSON body, or "".
func extractID(body []byte, path []string) string {
	if len(path) == 0 || len(body) == 0 {
		return ""
	}
	var v any
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	if d.Decode(&v) != nil {
		return ""
	}
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		v = m[k]
	}
	switch v := v.(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	case bool:
		return strconv.FormatBool(v)
	}
	return ""
}
