package conflict

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// LLMConfig is an OpenAI-compatible chat endpoint that proposes merges:
// the llm section of a pipeline's conflict policy.
type LLMConfig struct {
	BaseURL string `yaml:"base_url"`
	Model   string `yaml:"model"`
	// APIKeyEnv names the environment variable holding the key.
	APIKeyEnv string        `yaml:"api_key_env"`
	Timeout   time.Duration `yaml:"timeout"`
	// AutoApply applies a valid proposal; otherwise it is only proposed
	// and the conflict waits for someone to accept it.
	AutoApply bool `yaml:"auto_apply"`
}

// DefaultLLMTimeout bounds a proposal's request when Timeout is not set.
const DefaultLLMTimeout = 10 * time.Second

// SetDefaults sets the default timeout.
func (c *LLMConfig) SetDefaults() { *c = LLMConfig{Timeout: DefaultLLMTimeout} }

// LLM is a Proposer backed by an OpenAI-compatible chat completions
// endpoint. It sends the conflicting fields' base, local and remote values
// and asks for a JSON object of merged values; Resolve checks the answer.
type LLM struct {
	url, model, key string
	timeout         time.Duration
	client          *http.Client
}

// NewLLM returns the proposer of cfg, reading the key from the
// environment variable cfg.APIKeyEnv (no key is sent when it is unset).
// client may be nil for http.DefaultClient.
func NewLLM(cfg *LLMConfig, client *http.Client) *LLM {
	if client == nil {
		client = http.DefaultClient
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultLLMTimeout
	}
	key := ""
	if cfg.APIKeyEnv != "" {
		key = os.Getenv(cfg.APIKeyEnv)
	}
	return &LLM{url: strings.TrimSuffix(cfg.BaseURL, "/") + "/chat/completions", model: cfg.Model, key: key, timeout: timeout, client: client}
}

const llmInstructions = `You resolve sync conflicts between a local database record and the same record in another system.
For each field you are given its value at the last sync (base), the local value and the remote value; both sides changed it.
Answer with one JSON object that maps every listed field to the value the record should have, and nothing else.
Keep each value's JSON type. Prefer combining information over discarding it; never invent data.`

// Propose implements Proposer.
func (l *LLM) Propose(ctx context.Context, in Input, fields []string) (Values, error) {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	type sides struct {
		Base   json.RawMessage `json:"base"`
		Local  json.RawMessage `json:"local"`
		Remote json.RawMessage `json:"remote"`
	}
	ask := map[string]sides{}
	for _, f := range fields {
		ask[f] = sides{Base: orNull(in.Base[f]), Local: orNull(in.Local.Values[f]), Remote: orNull(in.Remote.Values[f])}
	}
	question, err := json.Marshal(map[string]any{"system": in.System, "fields": ask})
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(map[string]any{
		"model":           l.model,
		"temperature":     0,
		"response_format": map[string]string{"type": "json_object"},
		"messages": []map[string]string{
			{"role": "system", "content": llmInstructions},
			{"role": "user", "content": string(question)},
		},
	})
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if l.key != "" {
		req.Header.Set("Authorization", "Bearer "+l.key)
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("llm: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("llm: read the answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("llm: status %d", resp.StatusCode)
	}
	var answer struct {
		Choices []struct {
			Message struct {
				Content string `json:"content"`
			} `json:"message"`
		} `json:"choices"`
	}
	if err := json.Unmarshal(raw, &answer); err != nil {
		return nil, fmt.Errorf("llm: the answer is not a chat completion: %w", err)
	}
	if len(answer.Choices) == 0 {
		return nil, errors.New("llm: the answer has no choices")
	}
	var proposal Values
	if err := json.Unmarshal([]byte(answer.Choices[0].Message.Content), &proposal); err != nil {
		return nil, fmt.Errorf("llm: the proposal is not a JSON object: %w", err)
	}
	return proposal, nil
}
