// Package imports brings a system's existing records into a local table:
// it pages through the system's list API and hands every page to the
// intake as changes, the same intake webhooks use (cdcd.inbox, or Kafka),
// so the inbound pipeline applies imported records exactly as it applies
// webhook changes: matched, linked, decided by its conflict policy and
// written under the system's origin, so that nothing goes back to it.
//
// A page's cursor is handed to the caller once the page is durable in the
// intake. A caller that stores it resumes a stopped import where it
// stopped, with at most the page that was in flight listed again; the
// changes of a page listed twice carry the same delivery ids, which the
// intake drops.
package imports
