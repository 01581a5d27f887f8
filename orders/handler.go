package orders

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Options tunes a Handler. The zero value is usable.
type Options struct {
	// Registerer receives the request metrics; nil means no metrics.
	Registerer prometheus.Registerer
	// Logger receives panics and store failures; nil discards them.
	Logger *slog.Logger
	// StoreTimeout bounds every store call; 0 means 5s. A store that does
	// not answer in time yields 503.
	StoreTimeout time.Duration
	// Work, when set, returns extra server-side time spent on each API
	// request before it is handled (to make requests be in flight).
	Work func() time.Duration
	// Now is the clock for "today"; nil means time.Now.
	Now func() time.Time
	// Pick returns a number in [1, n] to choose a customer or merchant
	// when the request names none; nil means uniform random.
	Pick func(n int64) int64
}

// DefaultStoreTimeout is the store-call deadline when Options.StoreTimeout is 0.
const DefaultStoreTimeout = 5 * time.Second

// Handler serves the orders API under /logistics/orders.
type Handler struct {
	store   Store
	opts    Options
	log     *slog.Logger
	api     *http.ServeMux // method-specific routes
	paths   *http.ServeMux // same paths, any method: tells 405 from 404
	metrics *metrics
}

// route is one API endpoint.
type route struct {
	method, path string
	serve        func(*Handler, http.ResponseWriter, *http.Request)
}

var routes = []route{
	{http.MethodPost, "/logistics/orders", (*Handler).create},
	{http.MethodGet, "/logistics/orders/today", (*Handler).today},
	{http.MethodGet, "/logistics/orders/{id}", (*Handler).get},
	{http.MethodPut, "/logistics/orders/{id}", (*Handler).update},
	{http.MethodPut, "/logistics/orders/{id}/delivery", (*Handler).updateDelivery},
}

// NewHandler returns the API handler over s. It fails only when the
// metrics cannot be registered.
func NewHandler(s Store, opts Options) (*Handler, error) {
	if opts.StoreTimeout <= 0 {
		opts.StoreTimeout = DefaultStoreTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Pick == nil {
		opts.Pick = func(n int64) int64 { return 1 + rand.Int64N(n) }
	}
	h := &Handler{store: s, opts: opts, log: opts.Logger, api: http.NewServeMux(), paths: http.NewServeMux()}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	allowed := map[string][]string{}
	for _, rt := range routes {
		serve := rt.serve
		h.api.HandleFunc(rt.method+" "+rt.path, func(w http.ResponseWriter, r *http.Request) { serve(h, w, r) })
		allowed[rt.path] = append(allowed[rt.path], rt.method)
	}
	for path, methods := range allowed {
		if contains(methods, http.MethodGet) {
			methods = append(methods, http.MethodHead)
		}
		allow := strings.Join(methods, ", ")
		h.paths.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			writeError(w, &Error{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed",
				Message: fmt.Sprintf("method %s is not allowed on %s; allowed: %s", r.Method, r.URL.Path, allow)})
		})
	}
	if opts.Registerer != nil {
		m, err := newMetrics(opts.Registerer)
		if err != nil {
			return nil, err
		}
		h.metrics = m
	}
	return h, nil
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w}
	_, pattern := h.api.Handler(r)
	label := pattern
	if label == "" {
		label = "unmatched"
	}
	if h.metrics != nil {
		h.metrics.inFlight.Inc()
		defer func() {
			h.metrics.inFlight.Dec()
			code := rec.status
			if code == 0 {
				code = http.StatusOK
			}
			h.metrics.requests.WithLabelValues(label, strconv.Itoa(code)).Inc()
			h.metrics.latency.WithLabelValues(label).Observe(time.Since(start).Seconds())
		}()
	}
	defer h.recoverPanic(rec, r)

	if pattern == "" {
		if _, p := h.paths.Handler(r); p != "" {
			h.paths.ServeHTTP(rec, r)
			return
		}
		writeError(rec, &Error{Status: http.StatusNotFound, Code: "route_not_found",
			Message: fmt.Sprintf("no route for %s %s", r.Method, r.URL.Path)})
		return
	}
	if h.opts.Work != nil {
		if d := h.opts.Work(); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-r.Context().Done(): // the client left; nobody to answer
				t.Stop()
				return
			}
		}
	}
	h.api.ServeHTTP(rec, r)
}

func (h *Handler) recoverPanic(w *statusRecorder, r *http.Request) {
	v := recover()
	if v == nil {
		return
	}
	if v == http.ErrAbortHandler {
		panic(v)
	}
	h.log.Error("panic serving request", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	if w.status != 0 { // headers are out: all we can do is cut the response
		panic(http.ErrAbortHandler)
	}
	writeError(w, &Error{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error"})
}

// storeCtx bounds a store call.
func (h *Handler) storeCtx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), h.opts.StoreTimeout)
}

// storeFailure maps a store error to the API error the client sees.
func (h *Handler) storeFailure(r *http.Request, err error) *Error {
	switch {
	case errors.Is(err, ErrNotFound):
		return &Error{Status: http.StatusNotFound, Code: "order_not_found", Message: "no order with id " + r.PathValue("id")}
	case errors.Is(err, ErrVersionConflict):
		return &Error{Status: http.StatusConflict, Code: "version_conflict", Message: "the order changed since that version; GET it and retry with the new version"}
	case errors.Is(err, ErrIdempotencyMismatch):
		return unprocessable("idempotency_key_reused", "Idempotency-Key was already used with a different request body")
	case errors.Is(err, ErrUnknownCustomer):
		return unprocessable("unknown_customer", "customer does not exist")
	case errors.Is(err, ErrUnknownMerchant):
		return unprocessable("unknown_merchant", "merchant does not exist")
	}
	h.log.Warn("store failure", "method", r.Method, "path", r.URL.Path, "err", err)
	return &Error{Status: http.StatusServiceUnavailable, Code: "store_unavailable", Message: "the order store is unavailable; retry later"}
}

func (h *Handler) create(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("Idempotency-Key")
	if len(key) > MaxIdempotencyKey || (key != "" && !printableASCII(key)) {
		writeError(w, badRequest("invalid_idempotency_key", "Idempotency-Key must be 1..%d printable ASCII characters", MaxIdempotencyKey))
		return
	}
	req, err := DecodeCreateOrder(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		writeError(w, asAPIError(err))
		return
	}
	n := NewOrder{Items: req.Items, IdempotencyKey: key}
	if key != "" {
		n.Fingerprint = req.Fingerprint()
	}
	if req.CustomerID != nil {
		n.CustomerID = *req.CustomerID
	} else {
		n.CustomerID = h.opts.Pick(SeedCustomers)
	}
	if req.MerchantID != nil {
		n.MerchantID = *req.MerchantID
	} else {
		n.MerchantID = h.opts.Pick(SeedMerchants)
	}
	if req.Destination != nil {
		n.Destination = *req.Destination
	}
	ctx, cancel := h.storeCtx(r)
	defer cancel()
	o, created, err := h.store.Create(ctx, n)
	if err != nil {
		writeError(w, h.storeFailure(r, err))
		return
	}
	w.Header().Set("Location", fmt.Sprintf("/logistics/orders/%d", o.ID))
	w.Header().Set("ETag", ETag(o.Version))
	status := http.StatusCreated
	if !created {
		status = http.StatusOK
		w.Header().Set("Idempotent-Replayed", "true")
	}
	writeJSON(w, status, o)
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request) {
	id, e := pathID(r)
	if e != nil {
		writeError(w, e)
		return
	}
	ctx, cancel := h.storeCtx(r)
	defer cancel()
	o, err := h.store.Get(ctx, id)
	if err != nil {
		writeError(w, h.storeFailure(r, err))
		return
	}
	w.Header().Set("ETag", ETag(o.Version))
	writeJSON(w, http.StatusOK, o)
}

func (h *Handler) update(w http.ResponseWriter, r *http.Request) {
	id, e := pathID(r)
	if e != nil {
		writeError(w, e)
		return
	}
	req, err := DecodeUpdateOrder(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		writeError(w, asAPIError(err))
		return
	}
	version, e := expectedVersion(r, req.Version)
	if e != nil {
		writeError(w, e)
		return
	}
	if version == 0 {
		writeError(w, &Error{Status: http.StatusPreconditionRequired, Code: "version_required",
			Message: `give the version you read: "version" in the body or an If-Match: "<version>" header`})
		return
	}
	u := OrderUpdate{Destination: req.Destination, Status: req.Status}
	if req.Items != nil {
		u.Items = *req.Items
	}
	ctx, cancel := h.storeCtx(r)
	defer cancel()
	o, err := h.store.Update(ctx, id, version, u)
	if err != nil {
		writeError(w, h.storeFailure(r, err))
		return
	}
	w.Header().Set("ETag", ETag(o.Version))
	writeJSON(w, http.StatusOK, o)
}

func (h *Handler) updateDelivery(w http.ResponseWriter, r *http.Request) {
	id, e := pathID(r)
	if e != nil {
		writeError(w, e)
		return
	}
	req, err := DecodeUpdateDelivery(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		writeError(w, asAPIError(err))
		return
	}
	version, e := expectedVersion(r, req.Version)
	if e != nil {
		writeError(w, e)
		return
	}
	ctx, cancel := h.storeCtx(r)
	defer cancel()
	o, err := h.store.UpdateDelivery(ctx, id, version, DeliveryUpdate{Method: req.Method, Status: req.Status})
	if err != nil {
		writeError(w, h.storeFailure(r, err))
		return
	}
	w.Header().Set("ETag", ETag(o.Version))
	writeJSON(w, http.StatusOK, o)
}

// TodayResponse is the body of GET /logistics/orders/today.
type TodayResponse struct {
	Since  time.Time `json:"since"`
	Count  int       `json:"count"`
	Orders []Order   `json:"orders"`
}

func (h *Handler) today(w http.ResponseWriter, r *http.Request) {
	limit := DefaultTodayLimit
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if errors.Is(err, strconv.ErrRange) && !strings.HasPrefix(s, "-") {
			n, err = MaxTodayLimit, nil // too many digits for an int: above 500 like any other, clamped
		}
		if err != nil || n < 1 {
			writeError(w, badRequest("invalid_limit", "limit must be a whole number from 1 to %d, got %q", MaxTodayLimit, s))
			return
		}
		limit = min(n, MaxTodayLimit)
	}
	now := h.opts.Now().UTC()
	since := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	ctx, cancel := h.storeCtx(r)
	defer cancel()
	list, err := h.store.ListSince(ctx, since, limit)
	if err != nil {
		writeError(w, h.storeFailure(r, err))
		return
	}
	if list == nil {
		list = []Order{}
	}
	writeJSON(w, http.StatusOK, TodayResponse{Since: since, Count: len(list), Orders: list})
}

func pathID(r *http.Request) (int64, *Error) {
	s := r.PathValue("id")
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id < 1 {
		return 0, badRequest("invalid_id", "order id must be a positive integer, got %q", s)
	}
	return id, nil
}

// expectedVersion merges the body version and If-Match; 0 means neither.
func expectedVersion(r *http.Request, body *int64) (int64, *Error) {
	var header int64
	if im := strings.TrimSpace(r.Header.Get("If-Match")); im != "" {
		s := strings.TrimSuffix(strings.TrimPrefix(im, `"`), `"`)
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v < 1 {
			return 0, badRequest("invalid_if_match", `If-Match must be an order version such as "3", got %q`, im)
		}
		header = v
	}
	switch {
	case body != nil && header != 0 && *body != header:
		return 0, badRequest("version_mismatch", "body version %d and If-Match %d disagree", *body, header)
	case body != nil:
		return *body, nil
	default:
		return header, nil
	}
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func asAPIError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return badRequest("bad_request", "%s", err.Error())
}

// ErrorBody is the JSON body of every error response.
type ErrorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeError(w http.ResponseWriter, e *Error) {
	var b ErrorBody
	b.Error.Code, b.Error.Message = e.Code, e.Message
	if e.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, e.Status, b)
}

// writeJSON writes v as JSON. Text is not HTML-escaped: the body is
// application/json, and a message quoting "<" should read "<".
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"error":{"code":"internal","message":"cannot encode response"}}` + "\n")
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// WriteError writes an API error as the orders API does (for endpoints
// served next to it, such as /metrics).
func WriteError(w http.ResponseWriter, e *Error) { writeError(w, e) }

// statusRecorder remembers the status code written.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the real writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
