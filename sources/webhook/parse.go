package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/cdcd-dev/cdcd/cdc"
)

// Parser turns one verified delivery into changes. A malformed delivery
// yields an error that says what is wrong, fit to answer the sender with a
// 400; Parse never panics on any input. Parse is safe for concurrent use.
type Parser interface {
	Parse(r *Request) ([]Change, error)
}

// Change is one inbound change: a cdc.Event (Source and Schema are the
// system name, Table the vendor entity, Key {"id": "<vendor id>"}, and
// Partial, Refetch and OriginHint as the vendor's payload says) plus what
// the vendor said beyond the row for logs and tests.
type Change struct {
	cdc.Event
	// Kind is the vendor's own name for the change (HubSpot subscriptionType,
	// Salesforce changeType, Shopify topic).
	Kind string
	// MergedInto is the surviving id when this record was merged away (a
	// HubSpot merge): Op is OpDelete and the survivor arrives as its own
	// Change with Refetch.
	MergedInto string
	// Ignore marks a well-formed event of a kind cdcd does not sync (a
	// HubSpot association change, a ticket): the sender batches it with
	// others, so refusing the delivery would lose those. Only Kind is set;
	// the intake acknowledges and counts it and stores nothing.
	Ignore bool
}

// keyRow is Key {"id": "<id>"}.
func keyRow(id string) cdc.Row {
	return cdc.Row{{Name: "id", Value: cdc.AppendJSONString(nil, id)}}
}

// jsonID is a vendor id given as a JSON number or string, kept as its
// decimal text so large ids stay exact.
type jsonID string

func (id *jsonID) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*id = jsonID(s)
		return nil
	}
	if string(b) == "null" {
		return nil
	}
	if _, err := strconv.ParseInt(string(b), 10, 64); err != nil {
		if _, uerr := strconv.ParseUint(string(b), 10, 64); uerr != nil {
			return fmt.Errorf("id %s is not an integer or a string", truncate(b))
		}
	}
	*id = jsonID(b)
	return nil
}

// truncate bounds how much of the input an error quotes.
func truncate(b []byte) string {
	const limit = 40
	if len(b) > limit {
		return string(b[:limit]) + "..."
	}
	return string(b)
}

// jsonError rewrites encoding/json errors into what is wrong and where.
func jsonError(what string, err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: JSON is empty or truncated", what)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("%s: invalid JSON at byte %d: %w", what, se.Offset, err)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Errorf("%s: %s is a JSON %s, want %s", what, te.Field, te.Value, te.Type)
	}
	return fmt.Errorf("%s: %w", what, err)
}
