package pgwal

import (
	"context"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cdcd-dev/cdcd/cdc"
)

// sendStandbyStatus sends a Standby Status Update. write, flush and apply
// are all set to the durable position: flush is what moves the slot's
// confirmed_flush_lsn, and nothing may default the others.
func sendStandbyStatus(ctx context.Context, conn *pgconn.PgConn, durable cdc.LSN, now time.Time, replyRequested bool) error {
	lsn := pglogrepl.LSN(durable)
	return pglogrepl.SendStandbyStatusUpdate(ctx, conn, pglogrepl.StandbyStatusUpdate{
		WALWritePosition: lsn,
		WALFlushPosition: lsn,
		WALApplyPosition: lsn,
		ClientTime:       now,
		ReplyRequested:   replyRequested,
	})
}
