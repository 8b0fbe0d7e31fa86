package shopify

// versionHeader names the API version Shopify served a request with.
const versionHeader = "X-Shopify-API-Version"

// version is the API version to call and shape requests for: the
// configured one, or the one Shopify serves instead. Shopify does not
// refuse a retired version: it serves the oldest supported one ("fall
// forward", "API versioning", shopify.dev/docs/api/usage/versioning), so
// a pinned shop changes shape on a date nobody chose; cdcd follows.
func (w *Writer) version() string {
	if v := w.served.Load(); v != nil {
		return *v
	}
	return w.cfg.APIVersion
}

// servedVersion notes the version Shopify answered a request for asked
// with, when it is another.
func (w *Writer) servedVersion(asked, served string) {
	if served == "" || served == asked || served == "unstable" {
		return
	}
	if prev := w.served.Swap(&served); prev == nil || *prev != served {
		w.log.Warn().Str("api_version", w.cfg.APIVersion).Str("served_version", served).
			Msg("shopify serves another API version than the configured one (retired?); requests follow it: update api_version")
	}
}
