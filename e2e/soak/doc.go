// Package soak checks two-way sync with HubSpot under random concurrent
// edits: a seeded generator of local updates, edits in the HubSpot double
// announced by late, duplicated and reordered webhooks, deletes and
// re-creates, run against the real cdcd binary; at rest every linked
// record must hold the same mapped values on both sides or have an open
// conflict that says why, and every conflict must name the rule that
// decided it. A failing run prints its seed and the shortest history
// found by dropping operations and running again.
package soak
