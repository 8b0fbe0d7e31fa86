package webhook

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Handler defaults.
const (
	DefaultMaxBody     = 1 << 20
	DefaultTimeout     = 4 * time.Second // within the vendors' 5 s budget
	DefaultMaxInFlight = 256
)

// Acceptor makes inbound changes durable (Kafka acked, or an inbox table).
// Accept returns nil only once they are; on an error nothing may be assumed
// durable and the vendor is asked to retry, so Accept must tolerate seeing
// the same changes again (they keep their DeliveryID).
type Acceptor interface {
	Accept(ctx context.Context, system string, changes []Change) error
}

// System is one vendor mounted at /webhooks/{Name}.
type System struct {
	Name     string
	Verifier Verifier
	Parser   Parser
	// DeliveryID, when set, returns an id for the whole delivery that stays
	// the same across retries (a verifier's DeliveryID method). It stands in
	// for the DeliveryID of changes the parser left without one.
	DeliveryID func(*Request) string
	// MaxBody, when set, bounds this system's bodies instead of
	// HandlerConfig.MaxBody.
	MaxBody int64
}

// HandlerConfig bounds the intake. Zero values mean the defaults.
type HandlerConfig struct {
	MaxBody     int64         // bytes; DefaultMaxBody
	Timeout     time.Duration // per delivery, reading to accepting; DefaultTimeout
	MaxInFlight int           // deliveries handled at once; DefaultMaxInFlight
}

// Validate reports every problem, each prefixed with its field path.
func (c *HandlerConfig) Validate() error {
	var errs []error
	if c.MaxBody < 0 {
		errs = append(errs, fmt.Errorf("max_body: %d is negative", c.MaxBody))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout: %s is negative", c.Timeout))
	}
	if c.MaxInFlight < 0 {
		errs = append(errs, fmt.Errorf("max_in_flight: %d is negative", c.MaxInFlight))
	}
	return errors.Join(errs...)
}

func (c HandlerConfig) withDefaults() HandlerConfig {
	if c.MaxBody == 0 {
		c.MaxBody = DefaultMaxBody
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	return c
}

type handler struct {
	cfg      HandlerConfig
	systems  map[string]*System
	acc      Acceptor
	dedupe   Deduper
	log      zerolog.Logger
	metrics  *metrics
	inFlight chan struct{}
	now      func() time.Time
}

// NewHandler returns the intake for POST /webhooks/{system}. A delivery is
// answered 200 only once its changes were accepted (or all of them had
// been already); every other answer means nothing was accepted:
// 404 unknown system, 413 body over MaxBody, 401 signature missing, bad or
// expired, 400 unparsable, 503 (with Retry-After when overloaded) when the
// vendor should retry. dedupe may be nil to accept duplicates; reg may be
// nil to leave the metrics unregistered.
func NewHandler(cfg HandlerConfig, systems []System, acc Acceptor, dedupe Deduper, log zerolog.Logger, reg prometheus.Registerer) (http.Handler, error) {
	var errs []error
	if err := cfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	if acc == nil {
		errs = append(errs, errors.New("acceptor: required"))
	}
	byName := make(map[string]*System, len(systems))
	for i := range systems {
		s := &systems[i]
		switch {
		case s.Name == "":
			errs = append(errs, fmt.Errorf("systems[%d].name: empty", i))
		case s.Name == unknownSystem:
			errs = append(errs, fmt.Errorf("systems[%d].name: %q is reserved", i, s.Name))
		case byName[s.Name] != nil:
			errs = append(errs, fmt.Errorf("systems[%d].name: %q is mounted twice", i, s.Name))
		}
		if s.Verifier == nil {
			errs = append(errs, fmt.Errorf("systems[%d].verifier: required", i))
		}
		if s.Parser == nil {
			errs = append(errs, fmt.Errorf("systems[%d].parser: required", i))
		}
		byName[s.Name] = s
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return &handler{
		cfg:      cfg,
		systems:  byName,
		acc:      acc,
		dedupe:   dedupe,
		log:      log.With().Str("component", "webhook").Logger(),
		metrics:  m,
		inFlight: make(chan struct{}, cfg.MaxInFlight),
		now:      time.Now,
	}, nil
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	name := r.PathValue("system")
	sys := h.systems[name]
	if sys == nil {
		name = unknownSystem
	}
	status, msg := h.serve(w, r, sys)
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	io.WriteString(w, msg+"\n")
	h.metrics.observe(name, status, time.Since(start))
}

// serve handles one delivery and returns the answer.
func (h *handler) serve(w http.ResponseWriter, r *http.Request, sys *System) (int, string) {
	if sys == nil {
		return http.StatusNotFound, "unknown system"
	}
	select {
	case h.inFlight <- struct{}{}:
		defer func() { <-h.inFlight }()
	default:
		return http.StatusServiceUnavailable, "overloaded, retry later"
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.Timeout)
	defer cancel()
	log := h.log.With().Str("system", sys.Name).Logger()

	// A slow sender must not hold a slot past the timeout.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(h.cfg.Timeout))
	limit := h.cfg.MaxBody
	if sys.MaxBody > 0 {
		limit = sys.MaxBody
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return http.StatusRequestEntityTooLarge, fmt.Sprintf("body exceeds %d bytes", limit)
		}
		return http.StatusBadRequest, "read body: connection broken"
	}
	req := &Request{Method: r.Method, URL: fullURL(r), Header: r.Header, Body: body}
	if err := sys.Verifier.Verify(req, h.now()); err != nil {
		reason := verifyReason(err)
		log.Debug().Str("reason", reason).Msg("delivery rejected")
		return http.StatusUnauthorized, reason
	}
	changes, err := sys.Parser.Parse(req)
	if err != nil {
		return http.StatusBadRequest, err.Error()
	}
	if n := len(changes); n > 0 {
		changes = slices.DeleteFunc(changes, func(c Change) bool { return c.Ignore })
		if ignored := n - len(changes); ignored > 0 {
			h.metrics.ignored.WithLabelValues(sys.Name).Add(float64(ignored))
		}
	}
	if sys.DeliveryID != nil {
		fillDeliveryIDs(changes, sys.DeliveryID(req))
	}
	fresh, dups, err := h.filterSeen(ctx, sys.Name, changes)
	if err != nil {
		log.Warn().Err(err).Msg("dedupe lookup failed")
		return http.StatusServiceUnavailable, "temporarily unavailable, retry later"
	}
	if dups > 0 {
		h.metrics.duplicates.WithLabelValues(sys.Name).Add(float64(dups))
	}
	if len(fresh) == 0 {
		return http.StatusOK, "ok"
	}
	if err := h.acc.Accept(ctx, sys.Name, fresh); err != nil {
		log.Warn().Err(err).Int("changes", len(fresh)).Msg("accept failed")
		return http.StatusServiceUnavailable, "temporarily unavailable, retry later"
	}
	if h.dedupe != nil {
		// The changes are durable: a failed Mark only lets a retry through.
		if err := h.dedupe.Mark(context.WithoutCancel(ctx), sys.Name, deliveryIDs(fresh)); err != nil {
			log.Warn().Err(err).Msg("dedupe mark failed")
		}
	}
	log.Debug().Int("changes", len(fresh)).Int("duplicates", dups).Msg("delivery accepted")
	return http.StatusOK, "ok"
}

// verifyReason is the class of a verification failure, safe to answer with.
func verifyReason(err error) string {
	for _, class := range []error{ErrMissingSignature, ErrExpired, ErrBadSignature} {
		if errors.Is(err, class) {
			return class.Error()
		}
	}
	return ErrBadSignature.Error()
}

// fullURL is the URL as the sender called it: the scheme from
// X-Forwarded-Proto when a proxy terminated TLS, else from the connection.
func fullURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p != "" {
		p, _, _ = strings.Cut(p, ",")
		switch p = strings.ToLower(strings.TrimSpace(p)); p {
		case "http", "https":
			scheme = p
		}
	}
	uri := r.RequestURI
	if !strings.HasPrefix(uri, "/") { // absolute-form, or not from a server
		uri = r.URL.RequestURI()
	}
	return scheme + "://" + r.Host + uri
}

// fillDeliveryIDs gives changes without a DeliveryID one derived from the
// delivery's id, which is stable across retries, as is each change's
// position in the body.
func fillDeliveryIDs(changes []Change, id string) {
	if id == "" {
		return
	}
	for i := range changes {
		if changes[i].DeliveryID == "" {
			if len(changes) == 1 {
				changes[i].DeliveryID = id
			} else {
				changes[i].DeliveryID = id + "#" + strconv.Itoa(i)
			}
		}
	}
}

// filterSeen drops changes whose DeliveryID was accepted before or repeats
// earlier in the same delivery. Changes without a DeliveryID always pass.
func (h *handler) filterSeen(ctx context.Context, system string, changes []Change) ([]Change, int, error) {
	if h.dedupe == nil {
		return changes, 0, nil
	}
	fresh := changes[:0:0]
	inBatch := make(map[string]struct{}, len(changes))
	dups := 0
	for _, c := range changes {
		if c.DeliveryID == "" {
			fresh = append(fresh, c)
			continue
		}
		if _, ok := inBatch[c.DeliveryID]; ok {
			dups++
			continue
		}
		inBatch[c.DeliveryID] = struct{}{}
		seen, err := h.dedupe.Seen(ctx, system, c.DeliveryID)
		if err != nil {
			return nil, 0, fmt.Errorf("check delivery %q: %w", c.DeliveryID, err)
		}
		if seen {
			dups++
			continue
		}
		fresh = append(fresh, c)
	}
	return fresh, dups, nil
}

func deliveryIDs(changes []Change) []string {
	ids := make([]string, 0, len(changes))
	for _, c := range changes {
		if c.DeliveryID != "" {
			ids = append(ids, c.DeliveryID)
		}
	}
	return ids
}
