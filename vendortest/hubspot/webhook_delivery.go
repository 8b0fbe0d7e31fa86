package hubspot

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// webhookItem is a request to send at due: fresh events (attempt 0) are
// merged with others due at the same time; a retry is sent as it was.
type webhookItem struct {
	due     time.Time
	events  []WebhookEvent
	attempt int
}

// sendWebhooks sends requests as they come due until the server closes.
func (s *Server) sendWebhooks() {
	defer s.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-s.quit
		cancel()
	}()
	slots := make(chan struct{}, s.opts.Webhooks.Concurrency)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		items, next := s.dueWebhooks()
		for _, it := range items {
			select {
			case slots <- struct{}{}:
			case <-s.quit:
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer func() { <-slots }()
				s.sendWebhook(ctx, it)
			}()
		}
		timer.Reset(next)
		select {
		case <-s.quit:
			return
		case <-s.hooks.wake:
		case <-timer.C:
		}
	}
}

// dueWebhooks takes the requests due now and returns them with the wait
// until the next one.
func (s *Server) dueWebhooks() ([]webhookItem, time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	cfg := s.opts.Webhooks
	var out []webhookItem
	var fresh []WebhookEvent
	next := time.Hour
	rest := s.hooks.queue[:0]
	for _, it := range s.hooks.queue {
		switch {
		case it.due.After(now):
			rest = append(rest, it)
			next = min(next, it.due.Sub(now))
		case it.attempt == 0:
			fresh = append(fresh, it.events...)
		default:
			out = append(out, it)
		}
	}
	s.hooks.queue = rest
	if cfg.Reorder {
		s.rng.Shuffle(len(fresh), func(i, j int) { fresh[i], fresh[j] = fresh[j], fresh[i] })
	} else {
		slices.SortStableFunc(fresh, func(a, b WebhookEvent) int {
			return cmp.Or(cmp.Compare(a.OccurredAt, b.OccurredAt), cmp.Compare(a.EventID, b.EventID))
		})
	}
	for len(fresh) > 0 {
		n := min(len(fresh), cfg.MaxEvents)
		out = append(out, webhookItem{events: fresh[:n:n]})
		fresh = fresh[n:]
	}
	for _, it := range out {
		s.hooks.inFlight += len(it.events)
	}
	return out, next
}

// sendWebhook sends one request and queues its retry if it failed.
func (s *Server) sendWebhook(ctx context.Context, it webhookItem) {
	s.mu.Lock()
	cfg := s.opts.Webhooks
	s.mu.Unlock()
	events := slices.Clone(it.events)
	for i := range events {
		events[i].AttemptNumber = it.attempt
	}
	d := WebhookDelivery{At: time.Now(), Events: events}
	d.Status, d.Err = post(ctx, cfg, events)

	s.mu.Lock()
	defer s.mu.Unlock()
	s.hooks.inFlight -= len(events)
	s.hooks.sent = append(s.hooks.sent, d)
	if d.Status/100 == 2 || it.attempt >= cfg.Retries || ctx.Err() != nil {
		return
	}
	backoff := cfg.RetryBackoff << min(it.attempt, 16)
	s.hooks.queue = append(s.hooks.queue, webhookItem{due: time.Now().Add(backoff), events: it.events, attempt: it.attempt + 1})
	select {
	case s.hooks.wake <- struct{}{}:
	default:
	}
}

// post signs and sends events; it returns the status, or the error when
// no answer came.
func post(ctx context.Context, cfg Webhooks, events []WebhookEvent) (int, string) {
	body, err := json.Marshal(events)
	if err != nil {
		return 0, err.Error()
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cfg.URL, bytes.NewReader(body))
	if err != nil {
		return 0, err.Error()
	}
	ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-HubSpot-Request-Timestamp", ts)
	req.Header.Set("X-HubSpot-Signature-v3", SignV3(cfg.Secret, http.MethodPost, cfg.URL, body, ts))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode, ""
}

// SignV3 is HubSpot's v3 signature of a request: base64 of the
// HMAC-SHA256, under the client secret, of method, URL, body and the
// X-HubSpot-Request-Timestamp value.
func SignV3(secret, method, url string, body []byte, timestamp string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(method + url))
	m.Write(body)
	m.Write([]byte(timestamp))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}
