package vendorhttp

import (
	"net/http"
	"testing"
)

func TestNextLink(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		links []string
		want  string
	}{
		{nil, ""},
		{[]string{`<https://a/x?page_info=p>; rel="next"`}, "https://a/x?page_info=p"},
		{[]string{`<https://a/p>; rel="previous", <https://a/n>; rel="next"`}, "https://a/n"},
		{[]string{`<https://a/p>; rel="previous"`, `</n?page=2>; rel=next`}, "/n?page=2"},
		{[]string{`<https://a/n>; rel="prev next"`}, "https://a/n"},
		{[]string{`https://a/n; rel="next"`, `<broken; rel="next"`}, ""},
		{[]string{`<https://a/x?fields=id,name&page=2>; rel="next", <https://a/x?fields=id,name&page=9>; rel="last"`}, "https://a/x?fields=id,name&page=2"},
		{[]string{`<https://a/x?f=a,b&page=1>; rel="prev", <https://a/x?f=a;b&page=3>; title="a, b; c"; rel="next"`}, "https://a/x?f=a;b&page=3"},
		{[]string{`<https://a/p>; title="say \"a, b; c\""; rel="prev", <https://a/n>; rel="next"`}, "https://a/n"},
	} {
		if got := NextLink(http.Header{"Link": tc.links}); got != tc.want {
			t.Errorf("NextLink(%q) = %q, want %q", tc.links, got, tc.want)
		}
	}
}

func FuzzNextLink(f *testing.F) {
	f.Add(`<https://a/p>; rel="previous", <https://a/n>; rel="next"`)
	f.Fuzz(func(t *testing.T, v string) {
		_ = NextLink(http.Header{"Link": {v}})
	})
}
