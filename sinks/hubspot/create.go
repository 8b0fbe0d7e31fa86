package hubspot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/cdcd-dev/cdcd/cdc"
)

// errUnsettled fails the retry of a create whose earlier attempt has an
// unknown outcome and that nothing can read back.
var errUnsettled = errors.New("an earlier create of this record timed out and may have been applied, " +
	"and it has no unique property to read it back by, so sending it again could duplicate it; " +
	"check HubSpot for the record before replaying this change, and set id_property " +
	"to a unique property to make creates idempotent")

// create sends inputs as batch creates, links and updates the ones HubSpot
// refuses as duplicates, settles by a lookup the ones its answer leaves
// unclear, and keeps creates with unknown outcomes from being sent blindly
// again.
func (p *pass) create(ctx context.Context, object string, inputs []input) {
	var send []input
	for _, in := range inputs {
		if p.w.unsettled.take(object, p.records[in.rec].Key) && !resendable(object, in.props) {
			p.results[in.rec].Err = cdc.Permanent(errUnsettled)
			continue
		}
		send = append(send, in)
	}
	var link []input
	for chunk := range chunks(send) {
		link = append(link, p.createChunk(ctx, object, chunk)...)
	}
	p.write(ctx, object, "update", link)
}

// createChunk creates up to maxBatch inputs and settles each, but for those
// it returns: records that exist already, to be linked and updated.
func (p *pass) createChunk(ctx context.Context, object string, inputs []input) (link []input) {
	outs, err := p.send(ctx, object, "create", inputs)
	var unclear []input
	for i, in := range inputs {
		o := outcome{err: err}
		if err == nil {
			o = outs[i]
		}
		switch {
		case o.existing != "":
			link = append(link, input{rec: in.rec, id: o.existing, props: in.props})
		case err == nil && errors.Is(o.err, ErrOutcomeUnknown) && lookupValue(object, in.props) != "":
			unclear = append(unclear, in)
		default:
			if errors.Is(o.err, ErrOutcomeUnknown) && !resendable(object, in.props) {
				p.w.unsettled.add(object, p.records[in.rec].Key)
			}
			p.fail(in.rec, err)
			if err == nil {
				p.settle(in.rec, o)
			}
		}
	}
	if len(unclear) == 0 {
		return link
	}
	// HubSpot answered, but not so that these inputs could be told apart:
	// the ones that exist now are linked, the others were refused and are
	// sent again in halves until their answers are plain.
	found, err := p.lookup(ctx, object, unclear)
	if err != nil {
		for _, in := range unclear {
			p.results[in.rec].Err = fmt.Errorf("settle a create HubSpot's answer left unclear: %w: %w", ErrOutcomeUnknown, err)
		}
		return link
	}
	var again []input
	for _, in := range unclear {
		if id, ok := found[strings.ToLower(lookupValue(object, in.props))]; ok {
			link = append(link, input{rec: in.rec, id: id, props: in.props})
			continue
		}
		again = append(again, in)
	}
	if len(again) == 1 && len(inputs) == 1 {
		p.results[again[0].rec].Err = errors.New("batch create: HubSpot's answer named no result or error for the input, and it was not created")
		return link
	}
	for _, part := range halves(again) {
		link = append(link, p.createChunk(ctx, object, part)...)
	}
	return link
}

// halves splits in into two non-empty parts, or one when it has a single
// input.
func halves(in []input) [][]input {
	switch len(in) {
	case 0:
		return nil
	case 1:
		return [][]input{in}
	}
	return [][]input{in[:len(in)/2], in[len(in)/2:]}
}

// resendable reports whether sending a create again is safe: HubSpot
// refuses a second contact with the same email (409, then linked), and
// the record can be looked up by it.
func resendable(object string, props map[string]string) bool {
	return lookupValue(object, props) != ""
}

// lookupValue is the value of object's unique property in props, by which
// a created record can be read back; "" when there is none.
func lookupValue(object string, props map[string]string) string {
	if u := uniqueProperty(object); u != "" {
		return strings.TrimSpace(props[u])
	}
	return ""
}

// maxUnsettled bounds the memory of unknown creates; past it, creates are
// no longer remembered.
const maxUnsettled = 100_000

// unsettled remembers, by object and record key, creates whose outcome is
// unknown. It lives in memory: after a restart such a create is sent again.
type unsettled struct {
	mu   sync.Mutex
	keys map[[2]string]struct{}
}

func newUnsettled() *unsettled { return &unsettled{keys: map[[2]string]struct{}{}} }

func (u *unsettled) add(object, key string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.keys) < maxUnsettled {
		u.keys[[2]string{object, key}] = struct{}{}
	}
}

// take reports whether the create of key was unsettled, forgetting it.
func (u *unsettled) take(object, key string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	k := [2]string{object, key}
	_, ok := u.keys[k]
	delete(u.keys, k)
	return ok
}
