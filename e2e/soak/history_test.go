package soak

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// fields are the mapped HubSpot properties the soak edits, and their
// local columns.
var fields = []struct{ vendor, column string }{
	{"firstname", "first_name"},
	{"lastname", "last_name"},
	{"phone", "phone"},
	{"company", "company"},
}

func column(vendor string) string {
	for _, f := range fields {
		if f.vendor == vendor {
			return f.column
		}
	}
	panic("unknown field " + vendor)
}

// kind is what an operation does.
type kind int

const (
	// localUpdate sets one column of the local row.
	localUpdate kind = iota
	// crmEdit sets one property in HubSpot, as a person in its UI would,
	// announced by a webhook.
	crmEdit
	// localDelete deletes the local row.
	localDelete
	// localCreate inserts the record's row again after a delete.
	localCreate
)

// op is one operation of a history.
type op struct {
	At    time.Duration // after the start of the edits
	Kind  kind
	Rec   int    // the record: contact c<Rec>
	Field string // vendor field, for updates and edits
	Value string
	// Webhook timing of a CRM edit: sent Delay after the edit, and again
	// Again after that when Dup.
	Delay time.Duration
	Dup   bool
	Again time.Duration
}

func (o op) String() string {
	at := fmt.Sprintf("%6.2fs c%d ", o.At.Seconds(), o.Rec)
	switch o.Kind {
	case localUpdate:
		return at + fmt.Sprintf("local  UPDATE %s = %q", column(o.Field), o.Value)
	case crmEdit:
		s := at + fmt.Sprintf("crm    %s = %q, webhook +%.1fs", o.Field, o.Value, o.Delay.Seconds())
		if o.Dup {
			s += fmt.Sprintf(" and again +%.1fs", o.Again.Seconds())
		}
		return s
	case localDelete:
		return at + "local  DELETE"
	case localCreate:
		return at + "local  INSERT again"
	}
	return at + "?"
}

// history is a run's operations, in time order.
type history []op

func (h history) String() string {
	var b strings.Builder
	for i, o := range h {
		fmt.Fprintf(&b, "  %3d %s\n", i+1, o)
	}
	return b.String()
}

// params shape a generated history.
type params struct {
	Seed    uint64
	Records int           // contacts synced
	Hot     int           // of which this many are edited
	Edits   int           // operations
	Gap     time.Duration // mean time between operations
	// Deletes is the fraction of operations that delete a record (which a
	// later operation of it re-creates).
	Deletes float64
}

// generate makes a history: half local updates, half CRM edits, on Hot
// records over four fields; a third of the webhooks 1-3 s late (the rest
// within 200 ms), one in ten sent twice; deletes followed by re-creates.
// Webhooks of one record overtake each other whenever a later edit's is
// less late.
func generate(p params) history {
	rng := rand.New(rand.NewPCG(p.Seed, p.Seed^0x5eed))
	hot := rng.Perm(p.Records)[:min(p.Hot, p.Records)]
	deleted := map[int]bool{}
	var h history
	var at time.Duration
	for i := 0; i < p.Edits; i++ {
		at += time.Duration(rng.Int64N(int64(2*p.Gap) + 1))
		rec := hot[rng.IntN(len(hot))]
		o := op{At: at, Rec: rec}
		f := fields[rng.IntN(len(fields))].vendor
		switch {
		case deleted[rec]:
			o.Kind = localCreate
			deleted[rec] = false
		case rng.Float64() < p.Deletes:
			o.Kind = localDelete
			deleted[rec] = true
		case rng.IntN(2) == 0:
			o.Kind, o.Field, o.Value = localUpdate, f, fmt.Sprintf("L%d", i+1)
		default:
			o.Kind, o.Field, o.Value = crmEdit, f, fmt.Sprintf("H%d", i+1)
			w := webhookTiming(rng)
			o.Delay, o.Dup, o.Again = w.Delay, w.Dup, w.Again
		}
		h = append(h, o)
	}
	return h
}

// webhookTiming draws when a write's webhook is sent: a third 1-3 s late
// (HubSpot often is), the rest within 200 ms; one in ten twice.
func webhookTiming(rng *rand.Rand) op {
	var o op
	o.Delay = time.Duration(rng.Int64N(int64(200 * time.Millisecond)))
	if rng.IntN(3) == 0 {
		o.Delay = time.Second + time.Duration(rng.Int64N(int64(2*time.Second)))
	}
	if rng.IntN(10) == 0 {
		o.Dup, o.Again = true, time.Duration(rng.Int64N(int64(2*time.Second)))
	}
	return o
}
