package vendorhttp

import (
	"net/http"
	"time"
)

// idleConnsPerHost is how many idle connections a writer keeps to one
// vendor host: more than any pipeline's concurrency calls at once. Go's
// default, 2, closes every connection beyond the second after its call,
// so a pipeline with more concurrent calls opened (and, to a vendor,
// TLS-handshook) a new connection for most calls.
const idleConnsPerHost = 64

// Client returns the HTTP client a vendor writer calls with: timeout for
// each call (0: none beyond the call's context), connections kept for
// reuse across concurrent calls, and redirects not followed (a redirect
// is a configuration problem; following one would turn a POST into a
// GET).
func Client(timeout time.Duration) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = idleConnsPerHost
	return &http.Client{
		Timeout:       timeout,
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
