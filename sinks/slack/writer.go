// Package slack posts one message per record to a Slack incoming webhook.
//
// A webhook has no idempotency key: a write whose outcome is unknown (a
// timeout) is retried and may post the message twice.
package slack

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"text/template"

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
	text   *template.Template
	blocks *template.Template // nil without blocks
	post   vendorhttp.Post
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
		post: vendorhttp.Post{
			Client: vendorhttp.Client(cfg.Timeout), Limit: env.Limiters.For(Account(cfg.WebhookURL), cfg.Rate),
			URL: cfg.WebhookURL, Op: "post slack message", MaxAnswer: 4096,
		},
		log: env.Log,
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
		results[i].Err = w.message(ctx, &records[i])
	}
	return results, nil
}

func (w *Writer) message(ctx context.Context, r *syncapi.Record) error {
	body, err := w.payload(r)
	if err != nil {
		return cdc.Permanent(err)
	}
	answer, err := w.post.Send(ctx, body)
	if err != nil {
		return err
	}
	if got := strings.TrimSpace(string(answer)); got != "ok" {
		return fmt.Errorf("post slack message: answered %q, want \"ok\"", got)
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
