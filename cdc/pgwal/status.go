package pgwal

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
)

// pgEpoch is the origin of the protocol's timestamps.
var pgEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

func pgTime(t time.Time) int64 { return t.Sub(pgEpoch).Microseconds() }

// standbyStatus encodes a Standby Status Update ('r'). write, flush and
// apply are all set to the durable position: flush is what moves the
// slot's confirmed_flush_lsn, and nothing defaults the others.
func standbyStatus(dst []byte, durable cdc.LSN, now time.Time, replyRequested bool) []byte {
	dst = append(dst, 'r')
	dst = binary.BigEndian.AppendUint64(dst, uint64(durable))
	dst = binary.BigEndian.AppendUint64(dst, uint64(durable))
	dst = binary.BigEndian.AppendUint64(dst, uint64(durable))
	dst = binary.BigEndian.AppendUint64(dst, uint64(pgTime(now)))
	if replyRequested {
		return append(dst, 1)
	}
	return append(dst, 0)
}

// keepalive is a Primary Keepalive ('k').
type keepalive struct {
	walEnd         cdc.LSN // the walsender's sent position
	replyRequested bool
}

func parseKeepalive(b []byte) (keepalive, error) {
	if len(b) != 18 {
		return keepalive{}, fmt.Errorf("keepalive message of %d bytes, want 18", len(b))
	}
	return keepalive{walEnd: cdc.LSN(binary.BigEndian.Uint64(b[1:])), replyRequested: b[17] != 0}, nil
}

// xlogData returns the pgoutput message of an XLogData ('w') and its WAL
// start position.
func xlogData(b []byte) (cdc.LSN, []byte, error) {
	if len(b) < 25 {
		return 0, nil, fmt.Errorf("XLogData message of %d bytes, want at least 25", len(b))
	}
	return cdc.LSN(binary.BigEndian.Uint64(b[1:])), b[25:], nil
}
