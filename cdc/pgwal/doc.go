// Package pgwal captures a Postgres database's committed row changes from
// logical replication (pgoutput, protocol version 1, messages on) and hands
// them to a cdc.Publisher as events.
//
// What comes from github.com/jackc/pglogrepl:
//   - the replication commands: IDENTIFY_SYSTEM (the slot's database is
//     checked against the connection's), CREATE_REPLICATION_SLOT and
//     START_REPLICATION (stream.go, setup.go);
//   - the copy-both framing: Primary Keepalive and XLogData parsing, and the
//     Standby Status Update (status.go);
//   - the pgoutput messages that carry no row data: Begin, Commit, Origin,
//     Relation, Type, Truncate and logical decoding messages
//     (pgoutput.go). Its decoders trust their input, so each call is
//     guarded by the length checks that bound every index and allocation
//     and by a check that the decoded fields account for every byte.
//
// What cdcd keeps, because pglogrepl does not do it or does it too slowly
// for the capture path:
//   - Insert, Update and Delete parsing (message.go, tuple.go): pglogrepl
//     allocates a column struct per value and copies each value byte by
//     byte (21 allocations and ~13x the time for an 8-column row, see
//     BenchmarkParseInsert); readTuple aliases the message and allocates
//     nothing;
//   - value decoding into JSON (package cdc/pgtext, shared with the
//     Postgres writer), faster than pgtype for text
//     values and matching cdcd's event format (README, "Events");
//   - the event model, origins and keys (decoder*.go), the contiguous ack
//     tracker (cdc.Tracker), slot and publication management, heartbeats
//     and the session loop with its backpressure and drain (stream.go,
//     reader.go, monitor.go).
package pgwal
