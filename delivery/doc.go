// Package delivery is the machinery every outbound sink shares: it takes a
// pipeline's events, maps them into Records, and writes them through the
// system's Writer with per-record order, coalescing, retries with backoff,
// a token bucket per vendor account, links to the remote records, the audit
// trail and the dead-letter store.
//
// A Writer only speaks its vendor's API; it never retries or sleeps on its
// own. It classifies each failure: cdc.Permanent for what retrying cannot
// fix, cdc.RetryAfter for a delay the vendor asked for, anything else is
// transient.
package delivery
