package slack

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/ratelimit"
	"github.com/cdcd-dev/cdcd/syncapi"
	slackd "github.com/cdcd-dev/cdcd/vendortest/slack"
)

func record(fields map[string]any) syncapi.Record {
	return syncapi.Record{
		Event:  &cdc.Event{Op: cdc.OpUpdate, Schema: "public", Table: "stock", Pos: cdc.Position{CommitLSN: 0x10, Index: 1}},
		Op:     cdc.OpUpdate,
		Key:    `{"sku":"A-1"}`,
		Fields: fields,
	}
}

func newWriter(t *testing.T, cfg *Config) *Writer {
	t.Helper()
	w, err := New("alerts", cfg, config.Env{Log: zerolog.New(zerolog.NewTestWriter(t)), Limiters: ratelimit.NewLimiters()})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func fastConfig(url string) *Config {
	c := DefaultConfig()
	c.WebhookURL = url
	c.Text = "Low stock: {{.Fields.sku}} has {{.Fields.qty}} left ({{.Op}} {{.Table}})"
	c.Rate = ratelimit.Rate{Requests: 100, Per: time.Second}
	return c
}

func TestPostsRenderedMessage(t *testing.T) {
	t.Parallel()
	srv := slackd.New(t)
	cfg := fastConfig(srv.Hook("T1/B1/x"))
	cfg.Blocks = `[{"type":"section","text":{"type":"mrkdwn","text":{{json (printf "*%s* is low" .Fields.sku)}}}}]`
	w := newWriter(t, cfg)

	res, err := w.Write(context.Background(), []syncapi.Record{record(map[string]any{"sku": `A-"1"`, "qty": 1000000.0})})
	if err != nil || res[0].Err != nil {
		t.Fatalf("Write: %v %v", err, res)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("double received %d messages, want 1", len(msgs))
	}
	if want := `Low stock: A-"1" has 1000000 left (update stock)`; msgs[0].Text != want {
		t.Errorf("text %q, want %q", msgs[0].Text, want)
	}
	var blocks []map[string]any
	if err := json.Unmarshal(msgs[0].Blocks, &blocks); err != nil || len(blocks) != 1 ||
		blocks[0]["text"].(map[string]any)["text"] != `*A-"1"* is low` {
		t.Errorf("blocks %s (%v)", msgs[0].Blocks, err)
	}
}

func TestClassifiesSlackAnswers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		setup     func(*slackd.Server)
		permanent bool
		after     time.Duration
	}{
		{"invalid_payload", func(s *slackd.Server) { s.Respond(slackd.Response{Status: 400, Body: "invalid_payload"}) }, true, 0},
		{"action_prohibited", func(s *slackd.Server) { s.Respond(slackd.Response{Status: 403, Body: "action_prohibited"}) }, true, 0},
		{"channel_not_found", func(s *slackd.Server) { s.Respond(slackd.Response{Status: 404, Body: "channel_not_found"}) }, true, 0},
		{"channel_is_archived", func(s *slackd.Server) { s.Archive("T1/B1/x") }, true, 0},
		{"rate_limited", func(s *slackd.Server) { s.Respond(slackd.Response{Status: 429, Body: "rate_limited", RetryAfter: 7}) }, false, 7 * time.Second},
		{"rollup_error", func(s *slackd.Server) { s.Respond(slackd.Response{Status: 500, Body: "rollup_error"}) }, false, 0},
		{"invalid_token", func(s *slackd.Server) { s.Respond(slackd.Response{Status: 403, Body: "invalid_token"}) }, true, 0},
		{"no_service", func(s *slackd.Server) { s.Respond(slackd.Response{Status: 404, Body: "no_service"}) }, true, 0},
		{"not ok", func(s *slackd.Server) { s.Respond(slackd.Response{Status: 200, Body: "not ok"}) }, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := slackd.New(t)
			w := newWriter(t, fastConfig(srv.Hook("T1/B1/x")))
			tc.setup(srv)
			res, err := w.Write(context.Background(), []syncapi.Record{record(map[string]any{"sku": "A-1", "qty": 2.0})})
			if err != nil {
				t.Fatal(err)
			}
			got := res[0].Err
			if got == nil || cdc.IsPermanent(got) != tc.permanent {
				t.Fatalf("error %v, permanent %v; want permanent %v", got, cdc.IsPermanent(got), tc.permanent)
			}
			if !strings.Contains(got.Error(), tc.name) {
				t.Errorf("error %q does not quote Slack's %q", got, tc.name)
			}
			if d, _ := cdc.RetryAfterOf(got); d != tc.after {
				t.Errorf("retry after %v, want %v", d, tc.after)
			}
			if len(srv.Messages()) != 0 {
				t.Error("a refused message was recorded")
			}
		})
	}
}

func TestTemplateErrorIsPermanentAndSendsNothing(t *testing.T) {
	t.Parallel()
	srv := slackd.New(t)
	w := newWriter(t, fastConfig(srv.Hook("T1/B1/x")))
	res, _ := w.Write(context.Background(), []syncapi.Record{record(map[string]any{"sku": "A-1"})})
	if !cdc.IsPermanent(res[0].Err) || !strings.Contains(res[0].Err.Error(), "qty") {
		t.Fatalf("got %v, want a permanent error naming the missing field", res[0].Err)
	}
	if srv.Requests() != 0 {
		t.Errorf("%d requests sent", srv.Requests())
	}
}

func TestErrorsNeverQuoteTheWebhookURL(t *testing.T) {
	t.Parallel()
	cfg := fastConfig("http://127.0.0.1:1/services/T1/B1/s3cr3t-token")
	cfg.Timeout = time.Second
	w := newWriter(t, cfg)
	res, _ := w.Write(context.Background(), []syncapi.Record{record(map[string]any{"sku": "A-1", "qty": 1.0})})
	if res[0].Err == nil || cdc.IsPermanent(res[0].Err) {
		t.Fatalf("got %v, want a transient error", res[0].Err)
	}
	if strings.Contains(res[0].Err.Error(), "s3cr3t") {
		t.Errorf("error quotes the webhook URL: %v", res[0].Err)
	}
}

// The default rate keeps a burst within Slack's one message per second.
func TestDefaultRateAvoids429(t *testing.T) {
	t.Parallel()
	srv := slackd.New(t)
	srv.MinInterval(900 * time.Millisecond)
	cfg := fastConfig(srv.Hook("T1/B1/x"))
	cfg.Rate = DefaultConfig().Rate
	env := config.Env{Log: zerolog.Nop(), Limiters: ratelimit.NewLimiters()}
	w1, err := New("alerts", cfg, env)
	if err != nil {
		t.Fatal(err)
	}
	w2, _ := New("alerts2", cfg, env) // a second system on the same webhook
	for _, w := range []*Writer{w1, w2} {
		res, _ := w.Write(context.Background(), []syncapi.Record{record(map[string]any{"sku": "A-1", "qty": 1.0})})
		if res[0].Err != nil {
			t.Fatal(res[0].Err)
		}
	}
	if n := len(srv.Messages()); n != 2 || srv.Requests() != 2 {
		t.Errorf("%d messages in %d requests, want 2 in 2", n, srv.Requests())
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	c := DefaultConfig()
	c.Text = "{{.Fields.x"
	c.Blocks = "{{end}}"
	c.Rate = ratelimit.Rate{}
	err := c.Validate()
	for _, path := range []string{"webhook_url", "text", "blocks", "rate"} {
		if !strings.Contains(err.Error(), path+":") {
			t.Errorf("no problem reported for %s in %v", path, err)
		}
	}
	if _, err := New("alerts", c, config.Env{}); err == nil {
		t.Error("New accepted an invalid config")
	}
}

func TestRegisterLoadsConfig(t *testing.T) {
	t.Parallel()
	reg := config.NewRegistry()
	Register(reg)
	path := filepath.Join(t.TempDir(), "cdcd.yaml")
	yaml := "postgres: {url: 'postgres://h/db'}\nsystems:\n  alerts:\n    type: slack\n    webhook_url: https://hooks.slack.com/services/T/B/x\n    text: 'low: {{.Fields.sku}}'\n"
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, reg)
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.Systems["alerts"].Config.(*Config)
	if got.Rate != DefaultConfig().Rate || got.Text != "low: {{.Fields.sku}}" {
		t.Errorf("config %+v", got)
	}
	w, err := cfg.NewWriter(reg, "alerts", config.Env{Log: zerolog.Nop(), Limiters: ratelimit.NewLimiters()})
	if _, ok := w.(*Writer); err != nil || !ok {
		t.Fatalf("NewWriter: %T, %v", w, err)
	}
}
