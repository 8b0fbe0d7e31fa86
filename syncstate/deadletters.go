package syncstate

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/cdcd-dev/cdcd/cdc"
)

// DeadLetter is a change that could not be delivered: a permanent error, or
// retries exhausted. It keeps everything needed to replay it.
type DeadLetter struct {
	ID       int64 // assigned by the store
	Pipeline string
	System   string
	Object   string
	Table    string
	Key      string
	EventID  string
	Op       cdc.Op
	Record   json.RawMessage // the mapped Record's fields, as JSON
	Event    json.RawMessage // the source event's envelope
	Error    string          // the system's error text; the store keeps MaxErrorBytes of it
	Attempts int
	FailedAt time.Time
	// ClaimedID is the external id the record was refused a link to,
	// because another local record holds it (LinkConflictError); "" for
	// other letters.
	ClaimedID string
}

// DeadLetters stores undeliverable changes. Replays returns, and marks as
// taken, the dead letters of a pipeline that an operator asked to replay
// (cdcd dlq replay); Resolve records the outcome of a replay.
type DeadLetters interface {
	Put(ctx context.Context, letters []DeadLetter) error
	Replays(ctx context.Context, pipeline string, limit int) ([]DeadLetter, error)
	Resolve(ctx context.Context, id int64, err error) error
}

// ErrReplayInterrupted resolves a dead letter whose replay was cut short
// (the pipeline stopped): the store puts it back to wait for a replay, as
// the operator asked, without counting an attempt.
var ErrReplayInterrupted = errors.New("replay interrupted")

// ExternalRef names a record in a system: its object type and id.
type ExternalRef struct{ Object, ID string }

// ClaimReplayer is implemented by DeadLetters stores that can mark for
// replay, in one call, the dead letters of a pipeline that claimed one of
// ids (DeadLetter.ClaimedID). The pipeline calls it with the ids of the
// deletes it delivered, and ReplayDeadLetters (RunReplays) then writes the
// letters again.
type ClaimReplayer interface {
	ReplayClaims(ctx context.Context, pipeline string, ids []ExternalRef) (int, error)
}

// MaxErrorBytes is the most of its error's text a dead letter keeps (the
// store, Error and LastError alike): a system can answer a failure with a
// body of megabytes, which would then weigh on the store, every listing of
// the letters and their Kafka topic. A longer text is cut (CutError).
const MaxErrorBytes = 64 << 10

// CutError is text whole if it has at most limit bytes. A longer text is
// cut, at a character's start, to its head followed by a note saying it
// was cut and how long it was, limit bytes in all (for a limit of 40 or
// more). Cutting valid UTF-8 leaves valid UTF-8.
func CutError(text string, limit int) string {
	if len(text) <= limit {
		return text
	}
	note := " … [cut: " + strconv.Itoa(len(text)) + " bytes in all]"
	n := max(limit-len(note), 0)
	for n > 0 && !utf8.RuneStart(text[n]) {
		n--
	}
	return text[:n] + note
}
