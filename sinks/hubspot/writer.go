package hubspot

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/ratelimit"
	"github.com/cdcd-dev/cdcd/sinks/vendorhttp"
	"github.com/cdcd-dev/cdcd/syncapi"
)

// maxBatch is the most inputs a HubSpot batch call takes.
const maxBatch = 100

// windowPad lengthens the limiter's window beyond rate.per. The limiter
// counts calls when they start and HubSpot when they arrive; under load or
// network jitter the gap exceeds the limiter's own margin and the next
// window's first calls draw 429s. It costs about 2.5% of a 10 s budget.
const windowPad = 250 * time.Millisecond

// Writer writes records to HubSpot's CRM objects API. It is safe for
// concurrent use.
type Writer struct {
	name       string
	base       string // objects API URL
	token      string
	object     string
	idProperty string
	onDelete   string
	client     *http.Client
	limiter    *ratelimit.Limiter
	log        zerolog.Logger
}

var (
	_ syncapi.Writer  = (*Writer)(nil)
	_ syncapi.Batcher = (*Writer)(nil)
)

// New validates c and builds the writer of system name. Every request
// waits on limiters.For(account, c.Rate), shared with every writer of the
// same account; nil limiters gives the writer a limiter of its own. New
// does not connect.
func New(name string, c *Config, log zerolog.Logger, limiters *ratelimit.Limiters) (*Writer, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &Writer{
		name:       name,
		base:       c.objectsURL(),
		token:      c.Token,
		object:     c.Object,
		idProperty: c.IDProperty,
		onDelete:   c.OnDelete,
		client:     vendorhttp.Client(c.Timeout),
		limiter:    limiters.For(c.account(), ratelimit.Rate{Requests: c.Rate.Requests, Per: c.Rate.Per + windowPad}),
		log:        log.With().Str("component", "hubspot").Logger(),
	}, nil
}

// MaxBatch is HubSpot's batch limit.
func (w *Writer) MaxBatch() int { return maxBatch }

// PatchesFields tells the pipeline that an update by id changes only the
// properties it carries (syncapi.Patcher).
func (w *Writer) PatchesFields() bool { return true }

// Write applies records, grouped by object type, with one batch call per
// kind of write: archive, update (records with an external id, and clears),
// upsert by id_property, create. A create that HubSpot refuses as a
// duplicate (409 "Existing ID: N") is linked to N and updated.
//
// Results map back to the records by objectWriteTraceId, id, id_property
// value, email or properties, never by position (see the package doc). After a 429 the account's limiter is paused and
// the rest of the call fails with cdc.RetryAfter, unsent. The returned
// error is non-nil when every record failed with one call error.
func (w *Writer) Write(ctx context.Context, records []syncapi.Record) ([]syncapi.Result, error) {
	results := make([]syncapi.Result, len(records))
	for i := range records {
		results[i].ExternalID = records[i].ExternalID
	}
	p := &pass{w: w, records: records, results: results}
	for _, g := range w.plan(records, results) {
		p.run(ctx, g)
	}
	return results, p.wholeError()
}

// group is the writes to one object type.
type group struct {
	object                          string
	archive, update, upsert, create []input
}

// input is one record's part of a batch call.
type input struct {
	rec   int // index into the records
	id    string
	props map[string]string
}

// plan sorts records into groups; records that need no call, or cannot be
// written, get their result here.
func (w *Writer) plan(records []syncapi.Record, results []syncapi.Result) []*group {
	var groups []*group
	byObject := map[string]*group{}
	for i := range records {
		r := &records[i]
		obj := r.Object
		if obj == "" {
			obj = w.object
		}
		if obj == "" {
			results[i].Err = cdc.Permanent(fmt.Errorf("record has no object type; set object on system %q or in the mapping", w.name))
			continue
		}
		g := byObject[obj]
		if g == nil {
			g = &group{object: obj}
			byObject[obj] = g
			groups = append(groups, g)
		}
		if err := w.place(g, i, r); err != nil {
			results[i].Err = err
		}
	}
	return groups
}

// place adds record i to the group's batches, or returns its failure. A
// record placed nowhere without an error needs no call.
func (w *Writer) place(g *group, i int, r *syncapi.Record) error {
	switch r.Op {
	case cdc.OpCreate, cdc.OpUpdate, cdc.OpRead:
	case cdc.OpDelete:
		if r.ExternalID == "" || w.onDelete == OnDeleteIgnore {
			return nil // never synced, or deletes are not propagated
		}
		if w.onDelete == OnDeleteArchive {
			g.archive = append(g.archive, input{rec: i, id: r.ExternalID})
			return nil
		}
		props := make(map[string]string, len(r.Fields))
		for k := range r.Fields {
			if k != w.idProperty {
				props[k] = ""
			}
		}
		if len(props) > 0 {
			g.update = append(g.update, input{rec: i, id: r.ExternalID, props: props})
		}
		return nil
	default:
		return cdc.Permanent(fmt.Errorf("operation %q is not supported by HubSpot", r.Op))
	}
	props, err := properties(r.Fields)
	if err != nil {
		return cdc.Permanent(err)
	}
	switch {
	case r.ExternalID != "":
		g.update = append(g.update, input{rec: i, id: r.ExternalID, props: props})
	case w.idProperty != "" && props[w.idProperty] != "":
		g.upsert = append(g.upsert, input{rec: i, id: props[w.idProperty], props: props})
	default:
		g.create = append(g.create, input{rec: i, props: props})
	}
	return nil
}

// pass is one Write in progress.
type pass struct {
	w       *Writer
	records []syncapi.Record
	results []syncapi.Result
	// stop, once set by a 429, fails every later call of the pass.
	stop error
	// callErrs counts the records that failed with each whole-call error.
	callErrs map[error]int
}

func (p *pass) run(ctx context.Context, g *group) {
	if len(g.archive) > 0 {
		p.archive(ctx, g.object, g.archive)
	}
	p.write(ctx, g.object, "update", g.update)
	p.write(ctx, g.object, "upsert", g.upsert)
	p.create(ctx, g.object, g.create)
}

func (p *pass) archive(ctx context.Context, object string, inputs []input) {
	for chunk := range chunks(inputs) {
		body := archiveBody{Inputs: make([]archiveInput, len(chunk))}
		for i, in := range chunk {
			body.Inputs[i].ID = in.id
		}
		err := p.stop
		if err == nil {
			_, err = p.w.post(ctx, "batch archive "+object, "/"+object+"/batch/archive", body, nil)
		}
		for _, in := range chunk {
			p.fail(in.rec, err)
		}
	}
}

// fail sets a record's result from a whole-call error (nil is success).
func (p *pass) fail(rec int, err error) {
	if err == nil {
		return
	}
	if _, ok := cdc.RetryAfterOf(err); ok && p.stop == nil {
		p.stop = err
	}
	if p.callErrs == nil {
		p.callErrs = map[error]int{}
	}
	p.callErrs[err]++
	p.results[rec].Err = err
}

func (p *pass) wholeError() error {
	for err, n := range p.callErrs {
		if n == len(p.records) {
			return err
		}
	}
	return nil
}

func chunks(in []input) func(yield func([]input) bool) {
	return func(yield func([]input) bool) {
		for len(in) > 0 {
			n := min(len(in), maxBatch)
			if !yield(in[:n]) {
				return
			}
			in = in[n:]
		}
	}
}
