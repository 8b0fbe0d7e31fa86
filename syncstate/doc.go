// Package syncstate is where the delivery engine and cdcd's store meet:
// the records of a sync kept between runs (links to remote records with
// their base versions, pending creates, dead letters, the audit trail) and
// the contracts the engine needs of the stores that keep them. store
// implements them on Postgres; delivery/deliverytest in memory.
package syncstate
