// Package pagerduty sends one PagerDuty Events API v2 event per record:
// a trigger, acknowledge or resolve of the alert named by the record's
// dedup key.
//
// Events are idempotent by dedup key: resending a trigger for an open
// alert only adds a log entry, so a retried write does not page twice.
package pagerduty

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"text/template"
	"time"
	"unicode/utf8"

	"github.com/cdcd-dev/cdcd/sinks/tmpl"
	"github.com/cdcd-dev/cdcd/sinks/vendorhttp"
	"github.com/cdcd-dev/cdcd/syncapi"

	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/config"
)

// Limits of the Events API.
const (
	// throttlePause holds a routing key after a 429, which PagerDuty sends
	// without Retry-After; its guide advises retrying 30 s apart.
	throttlePause = 30 * time.Second
	maxDedupKey   = 255
	maxSummary    = 1024
	maxBody       = 512 << 10
)

// Writer sends records as events. It implements syncapi.Writer, one
// record per call.
type Writer struct {
	routingKey  string
	action      string
	actionField string
	tmpl        map[string]*template.Template // by config path; nil for unset optional fields
	post        vendorhttp.Post
	log         zerolog.Logger
}

var _ syncapi.Writer = (*Writer)(nil)

// New validates cfg and returns a writer that waits on the limiter
// env.Limiters holds for the routing key (a private one when env.Limiters
// is nil). It does not connect.
func New(name string, cfg *Config, env config.Env) (*Writer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	w := &Writer{
		routingKey:  cfg.RoutingKey,
		action:      cfg.Action,
		actionField: cfg.ActionField,
		tmpl:        map[string]*template.Template{},
		post: vendorhttp.Post{
			Client: vendorhttp.Client(cfg.Timeout), Limit: env.Limiters.For(Account(cfg.RoutingKey), cfg.Rate),
			URL: cfg.URL, Op: "send pagerduty event", MaxAnswer: 64 << 10, Throttle: throttlePause,
		},
		log: env.Log,
	}
	for _, t := range cfg.templates() {
		if t.text != "" {
			w.tmpl[t.path], _ = tmpl.Parse(t.path, t.text)
		}
	}
	return w, nil
}

// Account names a routing key's rate-limit account without revealing it.
func Account(routingKey string) string {
	sum := sha256.Sum256([]byte(routingKey))
	return "pagerduty:" + hex.EncodeToString(sum[:8])
}

type event struct {
	RoutingKey  string   `json:"routing_key"`
	EventAction string   `json:"event_action"`
	DedupKey    string   `json:"dedup_key"`
	Payload     *payload `json:"payload,omitempty"`
}

type payload struct {
	Summary       string         `json:"summary"`
	Source        string         `json:"source"`
	Severity      string         `json:"severity"`
	Timestamp     string         `json:"timestamp,omitempty"`
	Component     string         `json:"component,omitempty"`
	Group         string         `json:"group,omitempty"`
	Class         string         `json:"class,omitempty"`
	CustomDetails map[string]any `json:"custom_details,omitempty"`
}

// Write sends one event per record. Records are not linked (Result has no
// ExternalID): the dedup key is rendered from each record, and several
// records share one by design (the row that triggers an alert and the
// row that resolves it), which a link, unique per id, would refuse. A
// record that cannot be rendered and 400 answers are
// permanent; 5xx are retried, and 429 too, after pausing every writer of
// the routing key for its Retry-After or, as PagerDuty sends none, 30 s.
func (w *Writer) Write(ctx context.Context, records []syncapi.Record) ([]syncapi.Result, error) {
	results := make([]syncapi.Result, len(records))
	for i := range records {
		_, results[i].Err = w.send(ctx, &records[i])
	}
	return results, nil
}

func (w *Writer) send(ctx context.Context, r *syncapi.Record) (string, error) {
	ev, err := w.event(r)
	if err != nil {
		return "", cdc.Permanent(err)
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return "", cdc.Permanent(fmt.Errorf("encode pagerduty event: %w", err))
	}
	if len(body) > maxBody {
		return "", cdc.Permanent(fmt.Errorf("pagerduty event is %d bytes, over the 512 KB limit; map fewer fields", len(body)))
	}
	respBody, err := w.post.Send(ctx, body)
	if err != nil {
		return "", err
	}
	var ok struct {
		DedupKey string `json:"dedup_key"`
	}
	if json.Unmarshal(respBody, &ok) != nil || ok.DedupKey == "" {
		ok.DedupKey = ev.DedupKey
	}
	return ok.DedupKey, nil
}

func (w *Writer) event(r *syncapi.Record) (*event, error) {
	action, err := w.actionOf(r)
	if err != nil {
		return nil, err
	}
	d := tmpl.NewData(r)
	key, err := tmpl.Render(w.tmpl["dedup_key"], d)
	if err != nil || key == "" {
		return nil, fmt.Errorf("render pagerduty dedup_key: %w", cmp.Or(err, errors.New("empty")))
	}
	ev := &event{RoutingKey: w.routingKey, EventAction: action, DedupKey: dedupKey(key)}
	if action != ActionTrigger {
		// Only a trigger carries a payload, so a delete's empty fields do
		// not trip the payload's templates.
		return ev, nil
	}
	out := map[string]string{}
	for path, t := range w.tmpl {
		s, err := tmpl.Render(t, d)
		if err != nil {
			return nil, fmt.Errorf("render pagerduty %s: %w", path, err)
		}
		out[path] = s
	}
	switch out["severity"] {
	case "critical", "error", "warning", "info":
	default:
		return nil, fmt.Errorf("pagerduty severity %q is not critical, error, warning or info", out["severity"])
	}
	if out["summary"] == "" || out["source"] == "" {
		return nil, fmt.Errorf("pagerduty summary and source must not render empty")
	}
	ev.Payload = &payload{
		Summary:       truncate(out["summary"], maxSummary),
		Source:        out["source"],
		Severity:      out["severity"],
		Component:     out["component"],
		Group:         out["group"],
		Class:         out["class"],
		CustomDetails: r.Fields,
	}
	if r.Event != nil && !r.Event.CommitTime.IsZero() {
		ev.Payload.Timestamp = r.Event.CommitTime.UTC().Format(time.RFC3339Nano)
	}
	return ev, nil
}

func (w *Writer) actionOf(r *syncapi.Record) (string, error) {
	if w.actionField != "" {
		v, _ := r.Fields[w.actionField].(string)
		switch v {
		case ActionTrigger, ActionAcknowledge, ActionResolve:
			return v, nil
		}
		return "", fmt.Errorf("field %s holds no pagerduty action (trigger, acknowledge or resolve)", w.actionField)
	}
	if w.action != ActionAuto {
		return w.action, nil
	}
	if r.Op == cdc.OpDelete {
		return ActionResolve, nil
	}
	return ActionTrigger, nil
}

// dedupKey returns k, or its SHA-256 when k is over PagerDuty's limit, so
// that the same long key always maps to the same alert.
func dedupKey(k string) string {
	if utf8.RuneCountInString(k) <= maxDedupKey {
		return k
	}
	sum := sha256.Sum256([]byte(k))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// truncate cuts s to at most n characters, marking the cut with "…".
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	runes := []rune(s)
	return string(runes[:n-1]) + "…"
}
