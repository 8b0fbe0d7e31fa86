package hubspot

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"

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
// refused as a whole with 400 or 409 is split into single-input calls, so
// that one bad input fails alone.
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
		if len(inputs) > 1 {
			outs := make([]outcome, len(inputs))
			for i := range inputs {
				one, err := p.send(ctx, object, op, inputs[i:i+1])
				if err != nil {
					outs[i].err = err
					continue
				}
				outs[i] = one[0]
			}
			return outs, nil
		}
		return []outcome{refused(op, status, err)}, nil
	}
	return p.match(op, inputs, &ans), nil
}

// refused settles a single input that HubSpot refused as a whole.
func refused(op string, status int, err error) outcome {
	if id := existingID(err.Error()); status == http.StatusConflict && op == "create" && id != "" {
		return outcome{existing: id}
	}
	return outcome{err: cdc.Permanent(err)}
}

// match maps results and errors to inputs by objectWriteTraceId, else by
// id (update) or id_property value (upsert). An input missing from the
// answer has an unknown outcome.
func (p *pass) match(op string, inputs []input, ans *batchAnswer) []outcome {
	outs := make([]outcome, len(inputs))
	done := make([]bool, len(inputs))
	find := func(trace string, ids []string) int {
		if i, err := strconv.Atoi(trace); err == nil && trace != "" && i >= 0 && i < len(inputs) {
			return i
		}
		for _, id := range ids {
			for i, in := range inputs {
				if id != "" && op != "create" && strings.EqualFold(in.id, id) {
					return i
				}
			}
		}
		return -1
	}
	for _, r := range ans.Results {
		var ids []string
		switch op {
		case "update":
			ids = []string{r.ID}
		case "upsert":
			v, _ := r.Properties[p.w.idProperty].(string)
			ids = []string{v}
		}
		if i := find(r.TraceID, ids); i >= 0 {
			outs[i], done[i] = outcome{id: r.ID, version: r.UpdatedAt}, true
		}
	}
	var unmatched []batchError
	for _, e := range ans.Errors {
		var trace string
		if t := e.Context["objectWriteTraceId"]; len(t) > 0 {
			trace = t[0]
		}
		i := find(trace, e.Context["ids"])
		if i < 0 || done[i] {
			unmatched = append(unmatched, e)
			continue
		}
		outs[i], done[i] = itemOutcome(op, e), true
	}
	var missing []int
	for i := range inputs {
		if !done[i] {
			missing = append(missing, i)
		}
	}
	if len(missing) == 1 && len(unmatched) == 1 {
		outs[missing[0]] = itemOutcome(op, unmatched[0])
		return outs
	}
	for _, i := range missing {
		outs[i].err = fmt.Errorf("batch %s: input missing from HubSpot's answer: %w", op, ErrOutcomeUnknown)
	}
	return outs
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
