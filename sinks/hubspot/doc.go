// Package hubspot writes records to HubSpot's CRM objects API (contacts,
// companies, deals and custom objects) with its batch endpoints, up to 100
// records per call.
//
// # Which call a record takes
//
//   - With an external id (a link): batch update by id.
//   - Without one, when id_property is set and the record carries that
//     property: batch upsert by it; HubSpot creates or updates.
//   - Otherwise: batch create. When HubSpot refuses it as a duplicate
//     ("Contact already exists. Existing ID: N", a 409 or a per-input
//     CONFLICT) the record is linked to N and updated there.
//   - Deletes follow on_delete: archive (batch archive), clear (set every
//     mapped property but id_property to ""), ignore. A delete of a record
//     that was never synced needs no call.
//
// Result.ExternalID is HubSpot's id and Result.Version its updatedAt.
//
// # Matching answers to records
//
// Batch answers come in any order, and only some API versions echo the
// objectWriteTraceId each input carries. A result is matched by its trace
// id, else by its id (update), its id_property value (upsert), or for a
// create by the object's unique property (a contact's email) or else by
// every property the input set; an error by its trace id or the ids in its
// context. A create the answer leaves unclear (a 409 "Existing ID" or
// validation error that names no input) is settled at once by reading the
// records back by email (batch read with idProperty): a record found is
// linked and updated, the others are sent again in halves until each
// answer is plain.
//
// # Idempotency after an unknown outcome
//
// A call that times out or loses its connection may have been applied.
// The writer never resends on its own; it returns a transient error
// wrapping ErrOutcomeUnknown and the delivery layer writes the records
// again. The writer is a syncapi.Settler: the pipeline records every
// create in cdcd.pending_creates before it is sent and clears it once the
// record is linked, so a record whose create may have been applied, before
// a restart too (a kill between the call and its answer), comes back
// Unsettled. Such a record is:
//
//   - upserted as usual when id_property is set and the record carries it
//     (the upsert finds the record the first attempt created);
//   - for a contact with an email, looked up by email (batch read) and
//     linked when HubSpot holds it, created only when it does not;
//   - otherwise (a company or deal without id_property, a contact without
//     email) failed with a permanent error (dead-lettered, to be checked
//     and replayed by an operator) instead of being sent blindly: the
//     search API lags writes by seconds, so "search, then create" makes
//     the very duplicates it is meant to avoid. Configure id_property with
//     a property that has unique values to close that gap.
//
// # Errors and rate limits
//
// Every call waits on the account's shared ratelimit.Limiter (rate, default
// 100 requests per 10 s). A 429 pauses that limiter for everyone on the
// account (the window HubSpot reports for TEN_SECONDLY_ROLLING, an hour
// for DAILY, or Retry-After) and fails the rest of the Write with
// cdc.RetryAfter. 401, 403 and other 4xx answers are cdc.Permanent with
// HubSpot's message, as are per-input validation errors of a 207; 5xx,
// 408, 423 and transport failures are transient. A batch create refused
// as a whole with 409 (HubSpot names one existing record of the several
// there may be) is settled by one lookup by email; other batches refused
// as a whole with 400 or 409 are split in halves, and again, so that one
// bad record fails alone after a few calls.
package hubspot
