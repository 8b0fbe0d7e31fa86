package hubspot

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

const token = "pat-test"

type client struct {
	t    *testing.T
	srv  *Server
	auth string
}

func newServer(t *testing.T, opts Options) (*Server, *client) {
	t.Helper()
	opts.Tokens = []string{token}
	s := New(opts)
	t.Cleanup(s.Close)
	return s, &client{t: t, srv: s, auth: token}
}

// do sends a call and decodes the JSON answer into a map.
func (c *client) do(method, path string, body any) (int, map[string]any, http.Header) {
	c.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.srv.URL()+"/crm/v3/objects/"+path, r)
	if c.auth != "" {
		req.Header.Set("Authorization", "Bearer "+c.auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			c.t.Fatalf("%s %s: %v in %s", method, path, err, raw)
		}
	}
	return resp.StatusCode, out, resp.Header
}

func props(kv ...string) map[string]any {
	m := map[string]any{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return map[string]any{"properties": m}
}

func TestAuth(t *testing.T) {
	t.Parallel()
	_, c := newServer(t, Options{})
	for _, auth := range []string{"", "wrong"} {
		c.auth = auth
		if status, body, _ := c.do("GET", "contacts", nil); status != 401 || body["category"] != "INVALID_AUTHENTICATION" {
			t.Fatalf("token %q: %d %v", auth, status, body)
		}
	}
}

func TestSingleObjectLifecycle(t *testing.T) {
	t.Parallel()
	_, c := newServer(t, Options{})
	status, obj, _ := c.do("POST", "contacts", props("email", "a@example.com", "firstname", "Ada"))
	if status != 201 {
		t.Fatalf("create: %d %v", status, obj)
	}
	id := obj["id"].(string)
	if status, body, _ := c.do("POST", "contacts", props("email", "A@example.com")); status != 409 ||
		body["message"] != "Contact already exists. Existing ID: "+id || body["correlationId"] == "" {
		t.Fatalf("duplicate: %d %v", status, body)
	}
	if status, body, _ := c.do("PATCH", "contacts/"+id, props("firstname", "Grace")); status != 200 ||
		body["properties"].(map[string]any)["firstname"] != "Grace" || body["updatedAt"] == obj["updatedAt"] {
		t.Fatalf("update: %d %v", status, body)
	}
	if status, body, _ := c.do("GET", "contacts/a@example.com?idProperty=email", nil); status != 200 || body["id"] != id {
		t.Fatalf("get by email: %d %v", status, body)
	}
	if status, _, _ := c.do("DELETE", "contacts/"+id, nil); status != 204 {
		t.Fatalf("archive: %d", status)
	}
	if status, body, _ := c.do("GET", "contacts/"+id, nil); status != 404 || body["category"] != "OBJECT_NOT_FOUND" {
		t.Fatalf("get archived: %d %v", status, body)
	}
	if status, _, _ := c.do("POST", "contacts", props("email", "a@example.com")); status != 201 {
		t.Fatalf("archiving did not free the email: %d", status)
	}
	if h := c.srv.History("contacts", id); len(h) != 3 || h[2].Op != "archive" {
		t.Fatalf("history %+v", h)
	}
}

func TestListPages(t *testing.T) {
	t.Parallel()
	s, c := newServer(t, Options{})
	for i := range 5 {
		s.Insert("deals", map[string]string{"dealname": fmt.Sprint(i)})
	}
	var got []string
	path := "deals?limit=2&properties=dealname"
	for pages := 0; ; pages++ {
		if pages > 3 {
			t.Fatal("paging does not end")
		}
		status, body, _ := c.do("GET", path, nil)
		if status != 200 {
			t.Fatalf("list: %d %v", status, body)
		}
		for _, r := range body["results"].([]any) {
			p := r.(map[string]any)["properties"].(map[string]any)
			if len(p) != 1 {
				t.Fatalf("properties=dealname returned %v", p)
			}
			got = append(got, p["dealname"].(string))
		}
		paging, ok := body["paging"].(map[string]any)
		if !ok {
			break
		}
		path = "deals?limit=2&properties=dealname&after=" + paging["next"].(map[string]any)["after"].(string)
	}
	if strings.Join(got, ",") != "0,1,2,3,4" {
		t.Fatalf("listed %v", got)
	}
}

func inputs(n int, each func(i int) map[string]any) map[string]any {
	in := make([]map[string]any, n)
	for i := range in {
		in[i] = each(i)
	}
	return map[string]any{"inputs": in}
}

func TestBatch(t *testing.T) {
	t.Parallel()
	s, c := newServer(t, Options{})
	contact := func(trace bool, bad int) func(int) map[string]any {
		return func(i int) map[string]any {
			in := props("email", fmt.Sprintf("b%d@example.com", i))
			if i == bad {
				in = props("email", "broken")
			}
			if trace {
				in["objectWriteTraceId"] = fmt.Sprint(i)
			}
			return in
		}
	}
	if status, body, _ := c.do("POST", "contacts/batch/create", inputs(101, contact(true, -1))); status != 400 {
		t.Fatalf("101 inputs: %d %v", status, body)
	}
	if status, body, _ := c.do("POST", "contacts/batch/create", inputs(3, contact(false, 1))); status != 400 || len(s.Objects("contacts")) != 0 {
		t.Fatalf("invalid input without trace ids: %d %v", status, body)
	}
	status, body, _ := c.do("POST", "contacts/batch/create", inputs(3, contact(true, 1)))
	errs, _ := body["errors"].([]any)
	if status != 207 || len(body["results"].([]any)) != 2 || len(errs) != 1 {
		t.Fatalf("partial failure: %d %v", status, body)
	}
	if ctx := errs[0].(map[string]any)["context"].(map[string]any); fmt.Sprint(ctx["objectWriteTraceId"]) != "[1]" {
		t.Fatalf("error context %v", ctx)
	}

	status, body, _ = c.do("POST", "contacts/batch/upsert", inputs(2, func(i int) map[string]any {
		in := props("firstname", "U")
		in["id"], in["idProperty"] = fmt.Sprintf("b%d@example.com", i*5), "email" // b0 exists, b5 does not
		return in
	}))
	if status != 200 {
		t.Fatalf("upsert: %d %v", status, body)
	}
	for _, r := range body["results"].([]any) {
		r := r.(map[string]any)
		if wantNew := r["properties"].(map[string]any)["email"] == "b5@example.com"; r["new"] != wantNew {
			t.Fatalf("upsert result %v: new should be %v", r, wantNew)
		}
	}
	status, body, _ = c.do("POST", "contacts/batch/update", inputs(2, func(i int) map[string]any {
		in := props("firstname", "V")
		in["id"] = []string{s.Objects("contacts")[0].ID, "999999"}[i]
		return in
	}))
	if status != 207 || body["numErrors"] != float64(1) {
		t.Fatalf("update of a missing id: %d %v", status, body)
	}
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	s, c := newServer(t, Options{Limit: 3, Window: 300 * time.Millisecond})
	for range 3 {
		if status, _, _ := c.do("GET", "contacts", nil); status != 200 {
			t.Fatalf("within the limit: %d", status)
		}
	}
	status, body, h := c.do("GET", "contacts", nil)
	if status != 429 || body["policyName"] != "TEN_SECONDLY_ROLLING" || h.Get("X-HubSpot-RateLimit-Remaining") != "0" ||
		h.Get("X-HubSpot-RateLimit-Max") != "3" || h.Get("X-HubSpot-RateLimit-Interval-Milliseconds") != "300" {
		t.Fatalf("over the limit: %d %v %v", status, body, h)
	}
	deadline := time.Now().Add(2 * time.Second)
	for status == 429 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond) // the window has to pass; there is nothing to poll
		status, _, _ = c.do("GET", "contacts", nil)
	}
	if status != 200 {
		t.Fatalf("after the window: %d", status)
	}
	if s.Count429() < 1 {
		t.Fatal("429s not counted")
	}
}

func TestFaultsFollowTheSeed(t *testing.T) {
	t.Parallel()
	statuses := func() string {
		_, c := newServer(t, Options{Seed: 9, Faults: Faults{Rate: 0.5, Kinds: []Fault{Fault500, Fault503}}})
		var out []string
		for range 30 {
			status, _, _ := c.do("GET", "contacts", nil)
			out = append(out, fmt.Sprint(status))
		}
		return strings.Join(out, ",")
	}
	a, b := statuses(), statuses()
	if a != b || !strings.Contains(a, "500") || !strings.Contains(a, "200") {
		t.Fatalf("runs differ or lack faults:\n%s\n%s", a, b)
	}
}

func TestHangupAfterApply(t *testing.T) {
	t.Parallel()
	s, c := newServer(t, Options{})
	s.FailNext(FaultHangupAfterApply, 1)
	b, _ := json.Marshal(props("email", "h@example.com"))
	req, _ := http.NewRequest("POST", s.URL()+"/crm/v3/objects/contacts", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+c.auth)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("the server answered")
	}
	if n := len(s.Objects("contacts")); n != 1 {
		t.Fatalf("%d contacts, want the call applied", n)
	}
}

func TestConcurrentCreates(t *testing.T) {
	t.Parallel()
	s, c := newServer(t, Options{Limit: -1})
	post := func(email string) {
		b, _ := json.Marshal(props("email", email))
		req, _ := http.NewRequest("POST", s.URL()+"/crm/v3/objects/contacts", bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+c.auth)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 20 {
				post(fmt.Sprintf("c%d-%d@example.com", g, i))
				post("same@example.com")
			}
		})
	}
	wg.Wait()
	if n := len(s.Objects("contacts")); n != 161 {
		t.Fatalf("%d contacts, want 161", n)
	}
}

func TestBatchRead(t *testing.T) {
	t.Parallel()
	s, c := newServer(t, Options{})
	id := s.Insert("contacts", map[string]string{"email": "a@example.com", "firstname": "Ada"})
	before, _ := s.Get("contacts", id)
	s.Advance(time.Hour)
	if !s.Update("contacts", id, map[string]string{"firstname": "Bea"}) || s.Update("contacts", "404", nil) {
		t.Fatal("Update")
	}
	after, _ := s.Get("contacts", id)
	if after.UpdatedAt.Sub(before.UpdatedAt) < time.Hour || after.Properties["firstname"] != "Bea" {
		t.Fatalf("Update did not move the record: %+v", after)
	}
	status, body, _ := c.do("POST", "contacts/batch/read", map[string]any{
		"properties": []string{"firstname"}, "inputs": []map[string]string{{"id": id}, {"id": "999"}}})
	results, _ := body["results"].([]any)
	errs, _ := body["errors"].([]any)
	if status != 207 || len(results) != 1 || len(errs) != 1 {
		t.Fatalf("batch read: %d %v", status, body)
	}
	r := results[0].(map[string]any)
	if r["id"] != id || r["updatedAt"] != after.UpdatedAt.UTC().Format("2006-01-02T15:04:05.000Z") || r["properties"].(map[string]any)["firstname"] != "Bea" {
		t.Fatalf("result %v", r)
	}
}

// The v3 reference shows batch results without objectWriteTraceId; the
// double answers that way on request, or echoes only some of them.
func TestTraceIDModes(t *testing.T) {
	t.Parallel()
	contact := func(prefix string) func(int) map[string]any {
		return func(i int) map[string]any {
			in := props("email", fmt.Sprintf("%s%d@example.com", prefix, i))
			if i == 1 {
				in = props("email", "broken")
			}
			in["objectWriteTraceId"] = fmt.Sprint(i)
			return in
		}
	}
	traced := func(body map[string]any) (results, errs int) {
		for _, r := range body["results"].([]any) {
			if _, ok := r.(map[string]any)["objectWriteTraceId"]; ok {
				results++
			}
		}
		for _, e := range body["errors"].([]any) {
			if ctx, ok := e.(map[string]any)["context"].(map[string]any); ok && ctx["objectWriteTraceId"] != nil {
				errs++
			}
		}
		return results, errs
	}

	_, c := newServer(t, Options{TraceIDs: TraceIDsOmit})
	status, body, _ := c.do("POST", "contacts/batch/create", inputs(4, contact("o")))
	if r, e := traced(body); status != 207 || len(body["results"].([]any)) != 3 || r+e != 0 {
		t.Fatalf("omit: %d, %d results and %d errors traced: %v", status, r, e, body)
	}

	_, c = newServer(t, Options{TraceIDs: TraceIDsSome, Seed: 3})
	var some, all int
	for k := range 8 {
		status, body, _ := c.do("POST", "contacts/batch/create", inputs(4, contact(fmt.Sprint("s", k, "-"))))
		r, e := traced(body)
		if status != 207 {
			t.Fatalf("some: %d %v", status, body)
		}
		some += r + e
		all += 4
	}
	if some == 0 || some == all {
		t.Fatalf("some: %d of %d answers traced", some, all)
	}
}

func TestBatchReadByUniqueProperty(t *testing.T) {
	t.Parallel()
	s, c := newServer(t, Options{})
	id := s.Insert("contacts", map[string]string{"email": "Ada@Example.com", "firstname": "Ada"})
	status, body, _ := c.do("POST", "contacts/batch/read", map[string]any{"idProperty": "email",
		"properties": []string{"email"}, "inputs": []map[string]string{{"id": "ada@example.com"}, {"id": "nobody@example.com"}}})
	results, _ := body["results"].([]any)
	if status != 207 || len(results) != 1 || results[0].(map[string]any)["id"] != id {
		t.Fatalf("read by email: %d %v", status, body)
	}
	if status, body, _ := c.do("POST", "contacts/batch/read", map[string]any{"idProperty": "firstname",
		"inputs": []map[string]string{{"id": "Ada"}}}); status != 400 {
		t.Fatalf("read by a property that is not unique: %d %v", status, body)
	}
}
