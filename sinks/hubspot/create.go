package hubspot

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/syncapi"
)

var _ syncapi.Settler = (*Writer)(nil)

// SettlesCreate tells the pipeline to keep track of the records this
// writer creates (syncapi.Settler): those upserted by id_property need
// nothing, the others come back Unsettled when their outcome is unknown,
// and are looked up before they are created again.
func (w *Writer) SettlesCreate(rec *syncapi.Record) bool {
	if w.idProperty == "" {
		return true
	}
	v, err := propertyValue(rec.Fields[w.idProperty])
	return err != nil || v == ""
}

// errUnsettled fails a create whose earlier attempt may have been applied
// and that nothing can read back.
var errUnsettled = fmt.Errorf("an earlier create of this record may have been applied in HubSpot, "+
	"and it has no unique property to read it back by, so sending it again could duplicate it; "+
	"check HubSpot for the record before replaying this change, and set id_property "+
	"to a unique property to make creates idempotent: %w", ErrOutcomeUnknown)

// create sends inputs as batch creates, links and updates the ones HubSpot
// refuses as duplicates, and settles by a lookup the ones its answer
// leaves unclear. A record whose earlier create may have been applied
// (syncapi.Record.Unsettled) is looked up first, and created only when
// HubSpot does not hold it; one that cannot be looked up fails for good
// rather than be duplicated.
func (p *pass) create(ctx context.Context, object string, inputs []input) {
	var send, unsettled, link []input
	for _, in := range inputs {
		switch {
		case !p.records[in.rec].Unsettled:
			send = append(send, in)
		case lookupValue(object, in.props) != "":
			unsettled = append(unsettled, in)
		default:
			p.results[in.rec].Err = cdc.Permanent(errUnsettled)
		}
	}
	if len(unsettled) > 0 {
		found, absent, err := p.find(ctx, object, unsettled)
		for _, in := range unsettled {
			if err != nil {
				p.results[in.rec].Err = fmt.Errorf("look up a record whose create may have been applied: %w", err)
			}
		}
		link, send = append(link, found...), append(send, absent...)
	}
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
		case err != nil:
			p.fail(in.rec, err)
		default:
			p.settle(in.rec, o)
		}
	}
	if len(unclear) == 0 {
		return link
	}
	// HubSpot answered, but not so that these inputs could be told apart:
	// the ones that exist now are linked, the others were refused and are
	// sent again in halves until their answers are plain.
	found, again, err := p.find(ctx, object, unclear)
	if err != nil {
		for _, in := range unclear {
			p.results[in.rec].Err = fmt.Errorf("settle a create HubSpot's answer left unclear: %w: %w", ErrOutcomeUnknown, err)
		}
		return link
	}
	link = append(link, found...)
	if len(again) == 1 && len(inputs) == 1 {
		p.results[again[0].rec].Err = errors.New("batch create: HubSpot's answer named no result or error for the input, and it was not created")
		return link
	}
	for _, part := range halves(again) {
		link = append(link, p.createChunk(ctx, object, part)...)
	}
	return link
}

// find looks inputs up by the object's unique property: those HubSpot
// holds come back with their ids, the others are absent.
func (p *pass) find(ctx context.Context, object string, inputs []input) (found, absent []input, err error) {
	ids, err := p.lookup(ctx, object, inputs)
	if err != nil {
		return nil, nil, err
	}
	for _, in := range inputs {
		if id, ok := ids[strings.ToLower(lookupValue(object, in.props))]; ok {
			found = append(found, input{rec: in.rec, id: id, props: in.props})
			continue
		}
		absent = append(absent, in)
	}
	return found, absent, nil
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

// lookupable reports whether every input can be looked up.
func lookupable(object string, inputs []input) bool {
	for _, in := range inputs {
		if lookupValue(object, in.props) == "" {
			return false
		}
	}
	return true
}

// lookupValue is the value of object's unique property in props, by which
// a created record can be read back; "" when there is none.
func lookupValue(object string, props map[string]string) string {
	if u := uniqueProperty(object); u != "" {
		return strings.TrimSpace(props[u])
	}
	return ""
}
