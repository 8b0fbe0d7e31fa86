package hubspot

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Webhooks makes the Server POST webhook deliveries, as a HubSpot app
// subscribed to creation, propertyChange and deletion of every object type
// receives them, for every write: API calls (changeSource INTEGRATION,
// sourceId AppID), including writes applied by a call that then failed
// (FaultTimeoutAfterApply, FaultHangupAfterApply), and Insert or Update
// (changeSource CRM_UI).
//
// A create sends <object>.creation (and with CreationChanges one
// propertyChange per property it set), an update one propertyChange per
// property whose value it changed (none when nothing changed), an archive
// <object>.deletion. <object> is the type's singular ("contact" for
// "contacts").
//
// Each event is planned when written: by default one copy after a delay
// drawn from [MinDelay, MaxDelay] and, with probability Duplicate, a second
// copy (same eventId) after another draw; Plan replaces that. Copies that
// come due together travel in one request of at most MaxEvents events, in
// occurrence order, or shuffled with Reorder. A request answered other
// than 2xx, or not within Timeout, is sent again, whole, with attemptNumber
// counting up, RetryBackoff after the first try and doubling, at most
// Retries times; then it is dropped. Every request is signed with
// HubSpot's v3 signature (X-HubSpot-Signature-v3 over method, URL, body
// and X-HubSpot-Request-Timestamp) under Secret. Draws come from
// Options.Seed.
//
// HoldWebhooks and ReleaseWebhooks hold chosen events back and let them go
// later; WebhookDeliveries, HeldWebhooks and WebhooksPending show what was
// sent and what is still to come.
type Webhooks struct {
	// URL receives the deliveries; empty sends none (see SetWebhookURL).
	URL string
	// Secret is the app's client secret that signs deliveries.
	Secret string
	// AppID is the app whose API calls write: sourceId of INTEGRATION
	// events and appId of every event. Default 4242.
	AppID int64
	// PortalID is the account's id in every event. Default 62515.
	PortalID int64
	// Properties are the properties subscribed to for propertyChange;
	// nil subscribes to every property but hs_object_id, createdate and
	// lastmodifieddate.
	Properties []string
	// CreationChanges also sends propertyChange events for the
	// properties a create sets, as HubSpot does.
	CreationChanges bool
	// MinDelay and MaxDelay bound the delay from a write to its events'
	// first delivery.
	MinDelay, MaxDelay time.Duration
	// Duplicate is the probability, 0 to 1, that an event is sent twice.
	Duplicate float64
	// Reorder shuffles the events in each request.
	Reorder bool
	// Plan, when set, replaces MinDelay, MaxDelay and Duplicate: it returns
	// the delay of each copy of e to send, none to drop e. It is called
	// with the Server locked and must not call the Server; rng is the
	// Server's seeded source.
	Plan func(e WebhookEvent, rng *rand.Rand) []time.Duration
	// MaxEvents caps the events in one request. Default and most 100.
	MaxEvents int
	// Timeout bounds one request. Default 5 s, as HubSpot.
	Timeout time.Duration
	// Retries is how many times a failed request is sent again. Default
	// 10, as HubSpot; negative for none.
	Retries int
	// RetryBackoff is the wait before the first retry. Default 1 s
	// (HubSpot spreads its retries over a day).
	RetryBackoff time.Duration
	// Concurrency caps the requests in flight. Default 10.
	Concurrency int
}

func (w Webhooks) withDefaults() Webhooks {
	w.AppID = cmp.Or(w.AppID, 4242)
	w.PortalID = cmp.Or(w.PortalID, 62515)
	if w.MaxEvents <= 0 || w.MaxEvents > 100 {
		w.MaxEvents = 100
	}
	w.MaxDelay = max(w.MaxDelay, w.MinDelay)
	w.Timeout = cmp.Or(w.Timeout, 5*time.Second)
	w.Retries = cmp.Or(w.Retries, 10)
	w.RetryBackoff = cmp.Or(w.RetryBackoff, time.Second)
	w.Concurrency = cmp.Or(w.Concurrency, 10)
	return w
}

// WebhookEvent is one event as HubSpot sends it.
type WebhookEvent struct {
	EventID          int64   `json:"eventId"`
	SubscriptionID   int64   `json:"subscriptionId"`
	PortalID         int64   `json:"portalId"`
	AppID            int64   `json:"appId"`
	OccurredAt       int64   `json:"occurredAt"` // ms since the epoch
	SubscriptionType string  `json:"subscriptionType"`
	AttemptNumber    int     `json:"attemptNumber"`
	ObjectID         int64   `json:"objectId"`
	PropertyName     string  `json:"propertyName,omitempty"`
	PropertyValue    *string `json:"propertyValue,omitempty"`
	ChangeFlag       string  `json:"changeFlag,omitempty"`
	ChangeSource     string  `json:"changeSource"`
	SourceID         string  `json:"sourceId,omitempty"`
}

// WebhookDelivery is one request the Server sent.
type WebhookDelivery struct {
	At     time.Time
	Events []WebhookEvent
	// Status is the answer's status, 0 when none came (Err says why).
	Status int
	Err    string
}

// subscription ids by action.
var subscriptionIDs = map[string]int64{"creation": 1, "propertyChange": 2, "deletion": 3}

// webhookState is the Server's webhook state; the Server's mutex guards
// it.
type webhookState struct {
	queue    []webhookItem
	inFlight int // events
	held     []WebhookEvent
	hold     []func(WebhookEvent) bool
	sent     []WebhookDelivery
	nextID   int64
	wake     chan struct{}
}

// SetWebhookURL sets Webhooks.URL: writes from now on are announced there.
func (s *Server) SetWebhookURL(url string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.Webhooks.URL = url
}

// HoldWebhooks holds back every event, from now on, for which match is
// true (every event when match is nil), until ReleaseWebhooks.
func (s *Server) HoldWebhooks(match func(WebhookEvent) bool) {
	if match == nil {
		match = func(WebhookEvent) bool { return true }
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hooks.hold = append(s.hooks.hold, match)
}

// ReleaseWebhooks stops holding and plans the held events as if written
// now, in the order they were written.
func (s *Server) ReleaseWebhooks() {
	s.mu.Lock()
	defer s.mu.Unlock()
	held := s.hooks.held
	s.hooks.hold, s.hooks.held = nil, nil
	for _, e := range held {
		s.planEvent(e)
	}
}

// HeldWebhooks returns the events held back, in the order they were
// written.
func (s *Server) HeldWebhooks() []WebhookEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.hooks.held)
}

// WebhookDeliveries returns every request sent so far, in the order they
// were answered.
func (s *Server) WebhookDeliveries() []WebhookDelivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.hooks.sent)
}

// WebhooksPending is how many events are still to be sent, being sent or
// waiting for a retry; held ones are not counted.
func (s *Server) WebhooksPending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.hooks.inFlight
	for _, it := range s.hooks.queue {
		n += len(it.events)
	}
	return n
}

// announce turns a write into its events. It runs with s.mu held.
func (s *Server) announce(w Write, changed []string) {
	cfg := s.opts.Webhooks
	if cfg.URL == "" {
		return
	}
	object := strings.TrimSuffix(w.Type, "s")
	if strings.HasSuffix(w.Type, "ies") {
		object = strings.TrimSuffix(w.Type, "ies") + "y"
	}
	id, _ := strconv.ParseInt(w.ID, 10, 64)
	base := WebhookEvent{PortalID: cfg.PortalID, AppID: cfg.AppID, OccurredAt: w.At.UnixMilli(), ObjectID: id, ChangeSource: w.Source}
	if w.Source == "INTEGRATION" {
		base.SourceID = strconv.FormatInt(cfg.AppID, 10)
	} else {
		base.SourceID = "userId:" + strconv.FormatInt(cfg.PortalID%1000+1, 10)
	}
	event := func(action string) WebhookEvent {
		e := base
		s.hooks.nextID++
		e.EventID, e.SubscriptionID, e.SubscriptionType = s.hooks.nextID, subscriptionIDs[action], object+"."+action
		return e
	}
	switch w.Op {
	case "create":
		e := event("creation")
		e.ChangeFlag = "NEW"
		s.planEvent(e)
		if !cfg.CreationChanges {
			return
		}
	case "archive":
		e := event("deletion")
		e.ChangeFlag = "DELETED"
		s.planEvent(e)
		return
	}
	for _, name := range changed {
		switch {
		case cfg.Properties == nil && (name == "hs_object_id" || name == "createdate" || name == "lastmodifieddate"):
			continue
		case cfg.Properties != nil && !slices.Contains(cfg.Properties, name):
			continue
		}
		e := event("propertyChange")
		v := w.Properties[name]
		e.PropertyName, e.PropertyValue = name, &v
		s.planEvent(e)
	}
}

// planEvent holds e or queues its copies. It runs with s.mu held.
func (s *Server) planEvent(e WebhookEvent) {
	for _, match := range s.hooks.hold {
		if match(e) {
			s.hooks.held = append(s.hooks.held, e)
			return
		}
	}
	cfg := s.opts.Webhooks
	var delays []time.Duration
	if cfg.Plan != nil {
		delays = cfg.Plan(e, s.rng)
	} else {
		delays = append(delays, s.delay())
		if cfg.Duplicate > 0 && s.rng.Float64() < cfg.Duplicate {
			delays = append(delays, s.delay())
		}
	}
	now := time.Now()
	for _, d := range delays {
		s.hooks.queue = append(s.hooks.queue, webhookItem{due: now.Add(d), events: []WebhookEvent{e}})
	}
	if len(delays) > 0 {
		select {
		case s.hooks.wake <- struct{}{}:
		default:
		}
	}
}

func (s *Server) delay() time.Duration {
	cfg := s.opts.Webhooks
	if cfg.MaxDelay <= cfg.MinDelay {
		return cfg.MinDelay
	}
	return cfg.MinDelay + time.Duration(s.rng.Int64N(int64(cfg.MaxDelay-cfg.MinDelay)))
}
