package cdc

import "strings"

// How a transaction says which system its changes came from, so that
// capture stamps its events with that Origin: cdcd applies a system's
// changes under the replication origin OriginName(system) when the role may
// use replication origins, and otherwise emits first, in the transaction, a
// logical message with prefix OriginMessage whose content is the system.

// OriginMessage is the prefix of the transactional logical message
// (pg_logical_emit_message) that names the system of its transaction.
const OriginMessage = "cdcd.origin"

const originNamePrefix = "cdcd:"

// OriginName is the replication origin of changes made for system.
func OriginName(system string) string { return originNamePrefix + system }

// OriginSystem is the system a replication origin name stands for; a name
// OriginName did not make is returned whole.
func OriginSystem(name string) string { return strings.TrimPrefix(name, originNamePrefix) }
