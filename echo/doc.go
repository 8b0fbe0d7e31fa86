// Package echo keeps cdcd from syncing a change back to where it came from.
//
// Echoes are suppressed in layers, each counted in
// cdcd_echoes_suppressed_total{system, layer}:
//
//   - origin: the router never delivers an event to the system named in its
//     Origin (the apply step tags its transactions with the system).
//   - base: an inbound change whose values equal the link's base version
//     (what both sides agreed on at the last sync) carries nothing new.
//   - recent: an inbound change that reports values cdcd itself wrote to
//     that record lately (cdcd.recent_writes, shared by every process of a
//     deployment), even when a later write moved the base on (webhooks
//     arrive late and out of order) or another process made the write.
//   - hint: the vendor says the change was made by cdcd's own client
//     (Salesforce changeOrigin, HubSpot changeSource/sourceId).
package echo
