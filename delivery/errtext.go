package delivery

import (
	"net/url"
	"regexp"

	"github.com/cdcd-dev/cdcd/internal/clip"
)

// maxErrorText bounds the error text kept in dead letters and the audit.
const maxErrorText = 2048

var urlPattern = regexp.MustCompile(`[a-zA-Z][a-zA-Z0-9+.-]*://[^\s"'<>]+`)

// errorText is err's text for the stores: URLs lose their credentials and
// query strings (API keys travel there), and the text is bounded.
func errorText(err error) string {
	s := urlPattern.ReplaceAllStringFunc(err.Error(), func(raw string) string {
		u, perr := url.Parse(raw)
		if perr != nil {
			return "<url>"
		}
		u.User = nil
		if u.RawQuery != "" {
			u.RawQuery = "redacted"
		}
		u.Fragment = ""
		return u.String()
	})
	return clip.Line(s, maxErrorText)
}
