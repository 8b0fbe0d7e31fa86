package cdc

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// SourceInfo is the constant part of the envelope's "source" block.
type SourceInfo struct {
	// Name is the logical server name (the topic prefix).
	Name string
	// DB is the database name.
	DB string
	// Version is cdcd's version.
	Version string
}

// Unavailable is the value Debezium writes in "after" for an unchanged
// TOASTed column, whose value the WAL does not carry.
const Unavailable = "__debezium_unavailable_value"

// AppendEnvelope appends the Debezium JSON envelope of e (without the
// embedded schema) to dst: before, after, source, op, ts_ms, plus cdcd's
// "unchanged" list of the TOASTed columns that after holds as Unavailable
// and, for inbound events, an "inbound" block (delivery_id, partial,
// refetch, origin_hint). now is the envelope's ts_ms, the time cdcd
// processed the event.
func AppendEnvelope(dst []byte, e *Event, src *SourceInfo, now time.Time) []byte {
	dst = append(dst, `{"before":`...)
	dst = appendRow(dst, e.Before)
	dst = append(dst, `,"after":`...)
	dst = appendRow(dst, e.After)
	if e.After != nil && len(e.Unchanged) > 0 {
		dst = appendUnavailable(dst[:len(dst)-1], len(e.After) > 0, e.Unchanged)
	}
	dst = appendSourceHead(dst, src, e.Source)
	dst = strconv.AppendInt(dst, e.CommitTime.UnixMilli(), 10)
	dst = appendSourceTable(dst, src, e.Op == OpRead, e.Schema, e.Table)
	dst = appendPosition(dst, e)
	dst = append(dst, `","ts_ms":`...)
	dst = strconv.AppendInt(dst, now.UnixMilli(), 10)
	return appendTail(dst, e)
}

// appendSourceHead appends the source block's start, up to its ts_ms's
// value: version, connector (postgresql for source "" or SourcePostgres,
// else the source), name.
func appendSourceHead(dst []byte, src *SourceInfo, source string) []byte {
	dst = append(dst, `,"source":{"version":`...)
	dst = AppendJSONString(dst, src.Version)
	connector := "postgresql"
	if source != "" && source != SourcePostgres {
		connector = source
	}
	dst = append(dst, `,"connector":`...)
	dst = AppendJSONString(dst, connector)
	dst = append(dst, `,"name":`...)
	dst = AppendJSONString(dst, src.Name)
	return append(dst, `,"ts_ms":`...)
}

// appendSourceTable appends the source block's snapshot, db, schema and
// table.
func appendSourceTable(dst []byte, src *SourceInfo, snapshot bool, schema, table string) []byte {
	dst = append(dst, `,"snapshot":`...)
	if snapshot {
		dst = append(dst, `"true"`...)
	} else {
		dst = append(dst, `"false"`...)
	}
	dst = append(dst, `,"db":`...)
	dst = AppendJSONString(dst, src.DB)
	dst = append(dst, `,"schema":`...)
	dst = AppendJSONString(dst, schema)
	dst = append(dst, `,"table":`...)
	return AppendJSONString(dst, table)
}

// appendPosition appends the source block's rest (txId, lsn and index of
// a WAL event, origin), closes it and opens op, up to its value's closing
// quote.
func appendPosition(dst []byte, e *Event) []byte {
	if e.Pos.CommitLSN != 0 {
		dst = appendTxn(dst, e)
		dst = strconv.AppendUint(dst, uint64(e.Pos.Index), 10)
	}
	return appendOrigin(dst, e)
}

// appendTxn appends the source block's txId and lsn, and opens index.
func appendTxn(dst []byte, e *Event) []byte {
	dst = append(dst, `,"txId":`...)
	dst = strconv.AppendUint(dst, uint64(e.TxID), 10)
	dst = append(dst, `,"lsn":`...)
	dst = strconv.AppendUint(dst, uint64(e.Pos.CommitLSN), 10)
	return append(dst, `,"index":`...)
}

// appendOrigin appends the source block's origin, closes it and opens op,
// up to its value's closing quote.
func appendOrigin(dst []byte, e *Event) []byte {
	dst = append(dst, `,"origin":`...)
	if e.Origin == "" {
		dst = append(dst, "null"...)
	} else {
		dst = AppendJSONString(dst, e.Origin)
	}
	dst = append(dst, `},"op":"`...)
	return append(dst, byte(e.Op))
}

// appendTail appends what follows the envelope's ts_ms (the inbound block,
// the unchanged list) and closes it.
func appendTail(dst []byte, e *Event) []byte {
	if e.DeliveryID != "" || e.Partial || e.Refetch || e.OriginHint != "" {
		dst = appendInbound(dst, e)
	}
	if len(e.Unchanged) > 0 {
		dst = append(dst, `,"unchanged":[`...)
		for i, name := range e.Unchanged {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = AppendJSONString(dst, name)
		}
		dst = append(dst, ']')
	}
	return append(dst, '}')
}

// AppendKey appends the message key: a JSON object of the key columns, or
// null for a table without a key.
func AppendKey(dst []byte, e *Event) []byte {
	return appendRow(dst, e.Key)
}

func appendRow(dst []byte, r Row) []byte {
	if r == nil {
		return append(dst, "null"...)
	}
	dst = append(dst, '{')
	for i := range r {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendJSONString(dst, r[i].Name)
		dst = append(dst, ':')
		if len(r[i].Value) == 0 {
			dst = append(dst, "null"...)
		} else {
			dst = append(dst, r[i].Value...)
		}
	}
	return append(dst, '}')
}

// appendUnavailable appends the unchanged columns to an open JSON object,
// each with the value Unavailable, and closes it.
func appendUnavailable(dst []byte, comma bool, names []string) []byte {
	for _, name := range names {
		if comma {
			dst = append(dst, ',')
		}
		comma = true
		dst = AppendJSONString(dst, name)
		dst = append(dst, `:"`+Unavailable+`"`...)
	}
	return append(dst, '}')
}

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD,
// as encoding/json does.
func AppendJSONString[T string | []byte](dst []byte, s T) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		for i+8 <= len(s) && plain8(uint64(s[i])|uint64(s[i+1])<<8|uint64(s[i+2])<<16|uint64(s[i+3])<<24|
			uint64(s[i+4])<<32|uint64(s[i+5])<<40|uint64(s[i+6])<<48|uint64(s[i+7])<<56) {
			i += 8
		}
		if i == len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		end := min(i+utf8.UTFMax, len(s))
		r, size := utf8.DecodeRuneInString(string(s[i:end]))
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// plain8 reports whether none of the eight bytes of x needs escaping or
// checking as UTF-8: each is ASCII, at least 0x20, not '"' and not '\\'.
func plain8(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	quote, backslash := x^(ones*'"'), x^(ones*'\\')
	// Each term sets a byte's high bit where the byte is not ASCII (x),
	// below 0x20, the quote or the backslash (a zero byte of theirs); a
	// borrow may set more only above such a byte.
	return (x|(x-ones*0x20)&^x|(quote-ones)&^quote|(backslash-ones)&^backslash)&highs == 0
}

// appendInbound appends the "inbound" block of a vendor's event.
func appendInbound(dst []byte, e *Event) []byte {
	dst = append(dst, `,"inbound":{"delivery_id":`...)
	dst = AppendJSONString(dst, e.DeliveryID)
	dst = append(dst, `,"partial":`...)
	dst = strconv.AppendBool(dst, e.Partial)
	dst = append(dst, `,"refetch":`...)
	dst = strconv.AppendBool(dst, e.Refetch)
	dst = append(dst, `,"origin_hint":`...)
	dst = AppendJSONString(dst, e.OriginHint)
	return append(dst, '}')
}
