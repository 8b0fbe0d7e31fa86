// Package slack posts one message per record to a Slack incoming webhook.
//
// A webhook has no idempotency key: a write whose outcome is unknown (a
// timeout) is retried and may post the message twice.
package slack

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/template"

	"github.com/cdcd-dev/cdcd/ratelimit"
	"github.com/cdcd-dev/cdcd/sinks/tmpl"
	"github.com/cdcd-dev/cdcd/sinks/vendorhttp"
	"github.com/cdcd-dev/cdcd/syncapi"

	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/config"
)

// Writer posts records as messages. It implements syncapi.Writer, one
// record per call.
type Writer struct {
	url    string
	text   *template.Template
	blocks *template.Template // nil without blocks
	client *http.Client
	limit  *ratelimit.Limiter
	log    zerolog.Logger
}

var _ syncapi.Writer = (*Writer)(nil)

// New validates cfg and returns a writer that waits on the limiter
// env.Limiters holds for the webhook (a private one when env.Limiters is
// nil). It does not connect.
func New(name string, cfg *Config, env config.Env) (*Writer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	w := &Writer{
		url:    cfg.WebhookURL,
		client: &http.Client{Timeout: cfg.Timeout},
		limit:  env.Limiters.For(Account(cfg.WebhookURL), cfg.Rate),
		log:    env.Log,
	}
	w.text, _ = tmpl.Parse("text", cfg.Text)
	if cfg.Blocks != "" {
		w.blocks, _ = tmpl.Parse("blocks", cfg.Blocks)
	}
	return w, nil
}

// Account names a webhook's rate-limit account without revealing the URL.
func Account(webhookURL string) string {
	sum := sha256.Sum256([]byte(webhookURL))
	return "slack:" + hex.EncodeToString(sum[:8])
}

// message is the webhook's payload.
type message struct {
	Text   string          `json:"text"`
	Blocks json.RawMessage `json:"blocks,omitempty"`
}

// Write posts one message per record. A template that fails on a record,
// and 400, 403, 404 and 410 answers, are permanent; 429 (after its
// Retry-After) and 5xx are retried.
func (w *Writer) Write(ctx context.Context, records []syncapi.Record) ([]syncapi.Result, error) {
	results := make([]syncapi.Result, len(records))
	for i := range records {
		results[i].Err = w.post(ctx, &records[i])
	}
	return results, nil
}

func (w *Writer) post(ctx context.Context, r *syncapi.Record) error {
	body, err := w.payload(r)
	if err != nil {
		return cdc.Permanent(err)
	}
	if err := w.limit.Wait(ctx); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return cdc.Permanent(vendorhttp.TransportError("post slack message", err))
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.client.Do(req)
	if err != nil {
		return vendorhttp.TransportError("post slack message", err)
	}
	defer resp.Body.Close()
	respBody, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err := vendorhttp.Classify(resp.StatusCode, resp.Header, respBody, "post slack message"); err != nil {
		if d, ok := cdc.RetryAfterOf(err); ok {
			w.limit.Pause(d)
			w.log.Debug().Float64("retry_after_seconds", d.Seconds()).Msg("slack rate limit reached")
		}
		return err
	}
	if got := strings.TrimSpace(string(respBody)); got != "ok" {
		return fmt.Errorf("post slack message: HTTP %d with body %q, want \"ok\"", resp.StatusCode, got)
	}
	return nil
}

func (w *Writer) payload(r *syncapi.Record) ([]byte, error) {
	d := tmpl.NewData(r)
	text, err := tmpl.Render(w.text, d)
	if err != nil {
		return nil, fmt.Errorf("render slack text: %w", err)
	}
	m := message{Text: text}
	if w.blocks != nil {
		blocks, err := tmpl.Render(w.blocks, d)
		if err != nil {
			return nil, fmt.Errorf("render slack blocks: %w", err)
		}
		var probe []json.RawMessage
		if err := json.Unmarshal([]byte(blocks), &probe); err != nil {
			return nil, fmt.Errorf("render slack blocks: not a JSON array: %w", err)
		}
		m.Blocks = json.RawMessage(blocks)
	}
	return json.Marshal(m)
}
