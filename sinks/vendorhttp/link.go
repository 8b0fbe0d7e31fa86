package vendorhttp

import (
	"net/http"
	"slices"
	"strings"
)

// NextLink returns the target of the rel="next" link of a response's Link
// headers (RFC 8288), as written: relative or absolute; "" when there is
// none.
func NextLink(h http.Header) string {
	for _, v := range h.Values("Link") {
		for _, part := range strings.Split(v, ",") {
			target, params, ok := strings.Cut(strings.TrimSpace(part), ";")
			if !ok || !strings.HasPrefix(target, "<") || !strings.HasSuffix(target, ">") {
				continue
			}
			for _, p := range strings.Split(params, ";") {
				k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
				if strings.EqualFold(k, "rel") && slices.Contains(strings.Fields(strings.Trim(val, `"`)), "next") {
					return target[1 : len(target)-1]
				}
			}
		}
	}
	return ""
}
