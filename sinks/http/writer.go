package http

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
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
	// header and bodyHeader are each request's headers, without and
	// with a body: the configured ones, Accept, a Content-Type and
	// constant credentials (bearer, basic). A request shares them (the
	// transport only reads them) unless it sets its own: an hmac
	// signature, an idempotency key, credentials from the URL.
	header, bodyHeader http.Header
	auth               Auth
	signs              bool         // auth is per request (hmac)
	success            map[int]bool // nil: any 2xx
	idem               string
	idemKey            string // idem in canonical form
	idPath             []string
	timeout            time.Duration
	list               *lister // nil: no list: section
}

type operation struct {
	name   string
	method string
	url    *template.Template
	fixed  *url.URL           // the URL when its template has no actions
	body   *template.Template // nil: JSON of Fields, or no body for delete
	// eventID: a template or the idempotency header may use the event's id.
	eventID bool
	proto   *http.Request // what each request copies: the method and protocol
}

func newOperation(name, method string) *operation {
	return &operation{name: name, method: method,
		proto: &http.Request{Method: method, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}}
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
		header:  http.Header{},
		auth:    c.Auth,
		idem:    c.IdempotencyHeader,
		timeout: c.Timeout,
	}
	w.idemKey = http.CanonicalHeaderKey(w.idem)
	if c.IDPath != "" {
		w.idPath = strings.Split(c.IDPath, ".")
	}
	if c.List != nil {
		w.list = newLister(c.List)
	}
	for k, v := range c.Headers {
		w.header.Set(k, v)
	}
	w.bodyHeader = w.header.Clone()
	if w.bodyHeader.Get("Content-Type") == "" {
		w.bodyHeader.Set("Content-Type", "application/json")
	}
	w.header.Set("Accept", "application/json")
	w.bodyHeader.Set("Accept", "application/json")
	w.signs = c.Auth.Type == "hmac"
	if !w.signs {
		for _, h := range []http.Header{w.header, w.bodyHeader} {
			w.auth.authenticate(&http.Request{Header: h}, nil, time.Time{})
		}
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
		op := newOperation(name, r.Method)
		op.url, _ = parseURLTemplate(name+".url", r.URL) // parsed by Validate
		if text, ok := textOf(op.url); ok {
			op.fixed, _ = url.Parse(text) // nil if it does not parse: each write says so
		}
		op.eventID = op.fixed == nil || r.Body != "" || w.idem != ""
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
		var encoded []byte
		id, err := w.write(ctx, r, &encoded)
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		results[i] = syncapi.Result{ExternalID: id, Err: err}
		if err == nil {
			results[i].Encoded = encoded
		}
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

// write sends one record and returns its external id. When the request's
// body is the JSON of the record's fields, it sets *encoded to it.
func (w *Writer) write(ctx context.Context, r *syncapi.Record, encoded *[]byte) (string, error) {
	op, err := w.pick(r)
	if err != nil {
		return r.ExternalID, err
	}
	v := newView(op.name, r, op.eventID)
	u := op.fixed
	if u == nil {
		target, err := render(op.url, v)
		if err != nil {
			return r.ExternalID, cdc.Permanent(fmt.Errorf("render %s url: %w", op.name, err))
		}
		if u, err = url.Parse(string(target)); err != nil {
			return r.ExternalID, cdc.Permanent(fmt.Errorf("%s: rendered url does not parse; check %s.url", op.name, op.name))
		}
	}
	var body []byte
	switch {
	case op.body != nil:
		body, err = render(op.body, v)
	case op.name != "delete":
		body, err = jsonvalue.Marshal(v.Fields)
		*encoded = body
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
// values). The request goes to the client's transport as the client
// would send it (redirects are not followed, credentials in the URL are
// sent as basic auth) without the client's per-call copies.
func (w *Writer) do(ctx context.Context, op *operation, u *url.URL, body []byte, eventID string) (int, http.Header, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	req := newRequest(ctx, op.proto, u, body)
	req.Header = w.header
	if body != nil {
		req.Header = w.bodyHeader
	}
	idem := w.idem != "" && eventID != ""
	userAuth := u.User != nil && req.Header.Get("Authorization") == ""
	if w.signs || idem || userAuth {
		req.Header = extend(req.Header)
	}
	if idem {
		req.Header[w.idemKey] = []string{eventID}
	}
	if w.signs {
		w.auth.authenticate(req, body, time.Now())
	}
	if userAuth && req.Header.Get("Authorization") == "" {
		password, _ := u.User.Password()
		req.SetBasicAuth(u.User.Username(), password)
	}
	resp, err := w.client.Transport.RoundTrip(req)
	if err != nil {
		return 0, nil, nil, vendorhttp.TransportError(op.name+" "+u.Host, err)
	}
	defer resp.Body.Close()
	data, err := readBody(resp, maxResponse)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("%s %s: read response: %w", op.name, u.Host, err)
	}
	return resp.StatusCode, resp.Header, data, nil
}

// extend copies h to add or replace values: the values themselves are
// shared, since nothing changes a value in place.
func extend(h http.Header) http.Header {
	c := make(http.Header, len(h)+2)
	for k, v := range h {
		c[k] = v
	}
	return c
}

// newRequest is proto, a request without a context, URL or body, for
// ctx, u (which it does not copy or change: the transport only reads it)
// and body, in one copy.
func newRequest(ctx context.Context, proto *http.Request, u *url.URL, body []byte) *http.Request {
	req := proto.WithContext(ctx)
	req.URL, req.Host = u, strings.TrimSuffix(u.Host, ":")
	switch {
	case body == nil:
	case len(body) == 0:
		req.Body = http.NoBody
		req.GetBody = func() (io.ReadCloser, error) { return http.NoBody, nil }
	default:
		// A NopCloser of a bytes.Reader, which the transport knows is in
		// memory: it writes the headers and the body in one write.
		req.ContentLength = int64(len(body))
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	return req
}

// readBody reads up to limit bytes of resp's body, in one allocation when
// the answer says its length.
func readBody(resp *http.Response, limit int64) ([]byte, error) {
	size := int64(512)
	if n := resp.ContentLength; n >= 0 && n < limit {
		size = n + 1 // room to read the end of the body
	}
	b := make([]byte, 0, size)
	for int64(len(b)) < limit {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := resp.Body.Read(b[len(b):min(int64(cap(b)), limit)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
	return b, nil
}

func (w *Writer) succeeded(status int) bool {
	if w.success != nil {
		return w.success[status]
	}
	return status >= 200 && status < 300
}
