package conflict

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestLLMProposer(t *testing.T) {
	t.Setenv("CDCD_TEST_LLM_KEY", "sk-test")
	var (
		mu     sync.Mutex
		answer string
		status int
		hang   time.Duration
		got    struct {
			auth string
			body map[string]any
		}
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got.auth = r.Header.Get("Authorization")
		_ = json.NewDecoder(r.Body).Decode(&got.body)
		status, answer, hang := status, answer, hang
		mu.Unlock()
		if hang > 0 {
			select {
			case <-time.After(hang):
			case <-r.Context().Done():
			}
		}
		w.WriteHeader(status)
		b, _ := json.Marshal(map[string]any{"choices": []any{map[string]any{"message": map[string]any{"role": "assistant", "content": answer}}}})
		w.Write(b)
	}))
	defer srv.Close()
	llm := NewLLM(&LLMConfig{BaseURL: srv.URL + "/v1/", Model: "merge-1", APIKeyEnv: "CDCD_TEST_LLM_KEY", Timeout: 200 * time.Millisecond}, srv.Client())
	in := contact(t0, t0)
	p := Policy{Rules: chain("llm", "prefer:crm"), AutoApply: true}

	mu.Lock()
	status, answer = 200, `{"name": "Ann Bea"}`
	mu.Unlock()
	d := Resolve(context.Background(), in, p, llm)
	if string(d.Result["name"]) != `"Ann Bea"` || d.Fields["name"].Winner != WinnerLLM {
		t.Fatalf("proposal not applied: %+v", d)
	}
	mu.Lock()
	auth, model := got.auth, got.body["model"]
	msgs, _ := json.Marshal(got.body["messages"])
	mu.Unlock()
	if auth != "Bearer sk-test" || model != "merge-1" {
		t.Fatalf("request: auth %q model %v", auth, model)
	}
	if !strings.Contains(string(msgs), `\"local\":\"Ann\"`) || !strings.Contains(string(msgs), `\"remote\":\"Bea\"`) || strings.Contains(string(msgs), "phone") {
		t.Fatalf("the question does not hold exactly the conflicting field: %s", msgs)
	}
	for name, set := range map[string]func(){
		"not JSON":  func() { status, answer, hang = 200, "Ann Bea", 0 },
		"HTTP 500":  func() { status, answer, hang = 500, `{"name":"x"}`, 0 },
		"timeout":   func() { status, answer, hang = 200, `{"name":"x"}`, time.Second },
		"bad field": func() { status, answer, hang = 200, `{"nom":"x"}`, 0 },
	} {
		mu.Lock()
		set()
		mu.Unlock()
		if d := Resolve(context.Background(), in, p, llm); string(d.Result["name"]) != `"Bea"` || d.Fields["name"].Rule != "prefer:crm" {
			t.Errorf("%s: did not fall through to the next rule: %+v", name, d)
		}
	}
}
