package hubspot

import (
	"context"
	"errors"
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
// refuses as duplicates, and keeps creates with unknown outcomes from
// being sent blindly again.
func (p *pass) create(ctx context.Context, object string, inputs []input) {
	var send, link []input
	for _, in := range inputs {
		if p.w.unsettled.take(object, p.records[in.rec].Key) && !resendable(object, in.props) {
			p.results[in.rec].Err = cdc.Permanent(errUnsettled)
			continue
		}
		send = append(send, in)
	}
	for chunk := range chunks(send) {
		outs, err := p.send(ctx, object, "create", chunk)
		for i, in := range chunk {
			o := outcome{err: err}
			if err != nil {
				p.fail(in.rec, err)
			} else {
				o = outs[i]
			}
			switch {
			case o.existing != "":
				link = append(link, input{rec: in.rec, id: o.existing, props: in.props})
				continue
			case errors.Is(o.err, ErrOutcomeUnknown) && !resendable(object, in.props):
				p.w.unsettled.add(object, p.records[in.rec].Key)
			}
			if err == nil {
				p.settle(in.rec, o)
			}
		}
	}
	p.write(ctx, object, "update", link)
}

// resendable reports whether sending a create again is safe: HubSpot
// refuses a second contact with the same email (409, then linked).
func resendable(object string, props map[string]string) bool {
	return object == "contacts" && props["email"] != ""
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
