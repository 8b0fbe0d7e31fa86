package hubspot

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strconv"

	"github.com/cdcd-dev/cdcd/cdc"
)

type batchInput struct {
	ID         string            `json:"id,omitempty"`
	IDProperty string            `json:"idProperty,omitempty"`
	Properties map[string]string `json:"properties"`
	TraceID    string            `json:"objectWriteTraceId"`
}

type batchBody struct {
	Inputs []batchInput `json:"inputs"`
}

type archiveInput struct {
	ID string `json:"id"`
}

type archiveBody struct {
	Inputs []archiveInput `json:"inputs"`
}

// batchAnswer is a 200, 201 or 207 batch answer.
type batchAnswer struct {
	Results []struct {
		ID         string         `json:"id"`
		Properties map[string]any `json:"properties"`
		UpdatedAt  string         `json:"updatedAt"`
		TraceID    string         `json:"objectWriteTraceId"`
	} `json:"results"`
	Errors []batchError `json:"errors"`
}

type batchError struct {
	Category string              `json:"category"`
	Message  string              `json:"message"`
	Context  map[string][]string `json:"context"`
}

// outcome is what one input came to.
type outcome struct {
	id, version string
	err         error
	existing    string // a refused create: the id of the record that has its unique value
}

// write sends inputs as batch op (update or upsert) and settles their
// results.
func (p *pass) write(ctx context.Context, object, op string, inputs []input) {
	for chunk := range chunks(inputs) {
		outs, err := p.send(ctx, object, op, chunk)
		for i, in := range chunk {
			if err != nil {
				p.fail(in.rec, err)
				continue
			}
			p.settle(in.rec, outs[i])
		}
	}
}

func (p *pass) settle(rec int, o outcome) {
	r := &p.results[rec]
	r.Err = o.err
	if o.err == nil {
		r.ExternalID, r.Version = o.id, o.version
	}
}

// send makes one batch call and maps its answer back to the inputs. A call
// refused as a whole with 400 or 409 is split in halves, so that a bad
// input fails alone after a few calls.
func (p *pass) send(ctx context.Context, object, op string, inputs []input) ([]outcome, error) {
	if p.stop != nil {
		return nil, p.stop
	}
	body := batchBody{Inputs: make([]batchInput, len(inputs))}
	for i, in := range inputs {
		b := &body.Inputs[i]
		b.Properties, b.TraceID = in.props, strconv.Itoa(i)
		switch op {
		case "update":
			b.ID = in.id
		case "upsert":
			b.ID, b.IDProperty = in.id, p.w.idProperty
		}
	}
	var ans batchAnswer
	status, err := p.w.post(ctx, "batch "+op+" "+object, "/"+object+"/batch/"+op, body, &ans)
	if _, ok := cdc.RetryAfterOf(err); ok {
		p.stop = err
	}
	if err != nil {
		if status != http.StatusBadRequest && status != http.StatusConflict {
			return nil, err
		}
		if len(inputs) == 1 {
			return []outcome{refused(op, status, err)}, nil
		}
		if status == http.StatusConflict && op == "create" && lookupable(object, inputs) {
			// One or more inputs exist already; the message names one.
			// The caller looks them all up in one call.
			outs := make([]outcome, len(inputs))
			for i := range outs {
				outs[i].err = fmt.Errorf("batch create: refused as a whole (%w)", ErrOutcomeUnknown)
			}
			return outs, nil
		}
		half := len(inputs) / 2
		outs := make([]outcome, 0, len(inputs))
		for _, part := range [][]input{inputs[:half], inputs[half:]} {
			some, err := p.send(ctx, object, op, part)
			if err != nil {
				some = make([]outcome, len(part))
				for i := range some {
					some[i].err = err
				}
			}
			outs = append(outs, some...)
		}
		return outs, nil
	}
	return newMatcher(p.w, object, op, inputs).match(&ans), nil
}

// refused settles a single input that HubSpot refused as a whole.
func refused(op string, status int, err error) outcome {
	if id := existingID(err.Error()); status == http.StatusConflict && op == "create" && id != "" {
		return outcome{existing: id}
	}
	return outcome{err: cdc.Permanent(err)}
}

// transientCategories are per-input error categories worth retrying; any
// other category means HubSpot refused the input itself.
var transientCategories = map[string]bool{
	"": true, "RATE_LIMITS": true, "INTERNAL_ERROR": true, "SERVICE_UNAVAILABLE": true, "TIMEOUT": true, "LOCKED": true,
}

func itemOutcome(op string, e batchError) outcome {
	if e.Category == "CONFLICT" && op == "create" {
		if id := existingID(e.Message); id != "" {
			return outcome{existing: id}
		}
	}
	err := fmt.Errorf("batch %s: HubSpot refused the input: %s: %s", op, e.Category, e.Message)
	if transientCategories[e.Category] {
		return outcome{err: err}
	}
	return outcome{err: cdc.Permanent(err)}
}

var existingIDPattern = regexp.MustCompile(`Existing ID: ?(\d+)`)

// existingID is N in HubSpot's "... already exists. Existing ID: N".
func existingID(msg string) string {
	if m := existingIDPattern.FindStringSubmatch(msg); m != nil {
		return m[1]
	}
	return ""
}
