package orders

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"zerodrop.dev/zerodrop/internal/jsonkeys"
)

// Error is a client-facing API error: an HTTP status and the JSON body
// {"error":{"code":Code,"message":Message}}.
type Error struct {
	Status  int
	Code    string
	Message string
}

// Error implements error.
func (e *Error) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

func badRequest(code, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: code, Message: fmt.Sprintf(format, args...)}
}

func unprocessable(code, format string, args ...any) *Error {
	return &Error{Status: http.StatusUnprocessableEntity, Code: code, Message: fmt.Sprintf(format, args...)}
}

// CreateRequest is the body of POST /logistics/orders. Absent customer and
// merchant ids are picked from the seed data; an absent destination is the
// customer's address.
type CreateRequest struct {
	Items       []Item  `json:"items"`
	CustomerID  *int64  `json:"customer_id,omitempty"`
	MerchantID  *int64  `json:"merchant_id,omitempty"`
	Destination *string `json:"destination,omitempty"`
}

// Fingerprint identifies the request for idempotency: two requests with the
// same fields in any key order or spacing have the same fingerprint.
func (c CreateRequest) Fingerprint() string {
	b, err := json.Marshal(c)
	if err != nil { // cannot happen: only plain fields
		panic(fmt.Sprintf("orders: marshal create request: %v", err))
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// UpdateRequest is the body of PUT /logistics/orders/{id}. At least one of
// items, destination and status is required. Version may instead come from
// the If-Match header.
type UpdateRequest struct {
	Items       *[]Item `json:"items,omitempty"`
	Destination *string `json:"destination,omitempty"`
	Status      *Status `json:"status,omitempty"`
	Version     *int64  `json:"version,omitempty"`
}

// DeliveryRequest is the body of PUT /logistics/orders/{id}/delivery. At
// least one of method and status is required; version (or If-Match) is
// optional here.
type DeliveryRequest struct {
	Method  *DeliveryMethod `json:"method,omitempty"`
	Status  *DeliveryStatus `json:"status,omitempty"`
	Version *int64          `json:"version,omitempty"`
}

// DecodeCreateOrder reads and validates a create request. Errors are *Error
// with a 4xx status.
func DecodeCreateOrder(r io.Reader) (CreateRequest, error) {
	var req CreateRequest
	if err := decodeJSON(r, &req); err != nil {
		return CreateRequest{}, err
	}
	if err := req.validate(); err != nil {
		return CreateRequest{}, err
	}
	return req, nil
}

// DecodeUpdateOrder reads and validates an update request. Errors are
// *Error with a 4xx status.
func DecodeUpdateOrder(r io.Reader) (UpdateRequest, error) {
	var req UpdateRequest
	if err := decodeJSON(r, &req); err != nil {
		return UpdateRequest{}, err
	}
	if req.Items == nil && req.Destination == nil && req.Status == nil {
		return UpdateRequest{}, unprocessable("empty_update", "nothing to update: give items, destination or status")
	}
	if req.Items != nil {
		if err := validateItems(*req.Items); err != nil {
			return UpdateRequest{}, err
		}
	}
	if req.Destination != nil {
		if err := validateDestination(*req.Destination); err != nil {
			return UpdateRequest{}, err
		}
	}
	if req.Status != nil && !req.Status.Valid() {
		return UpdateRequest{}, unprocessable("invalid_status", "status %q is not one of %v", *req.Status, Statuses())
	}
	if req.Version != nil && *req.Version < 1 {
		return UpdateRequest{}, unprocessable("invalid_version", "version must be >= 1, got %d", *req.Version)
	}
	return req, nil
}

// DecodeUpdateDelivery reads and validates a delivery update request.
// Errors are *Error with a 4xx status.
func DecodeUpdateDelivery(r io.Reader) (DeliveryRequest, error) {
	var req DeliveryRequest
	if err := decodeJSON(r, &req); err != nil {
		return DeliveryRequest{}, err
	}
	if req.Method == nil && req.Status == nil {
		return DeliveryRequest{}, unprocessable("empty_update", "nothing to update: give method or status")
	}
	if req.Method != nil && !req.Method.Valid() {
		return DeliveryRequest{}, unprocessable("invalid_delivery_method", "delivery method %q is not one of %v", *req.Method, DeliveryMethods())
	}
	if req.Status != nil && !req.Status.Valid() {
		return DeliveryRequest{}, unprocessable("invalid_delivery_status", "delivery status %q is not one of %v", *req.Status, DeliveryStatuses())
	}
	if req.Version != nil && *req.Version < 1 {
		return DeliveryRequest{}, unprocessable("invalid_version", "version must be >= 1, got %d", *req.Version)
	}
	return req, nil
}

func (c CreateRequest) validate() error {
	if err := validateItems(c.Items); err != nil {
		return err
	}
	if c.CustomerID != nil && (*c.CustomerID < 1 || *c.CustomerID > SeedCustomers) {
		return unprocessable("unknown_customer", "customer_id %d does not exist (valid: 1..%d)", *c.CustomerID, SeedCustomers)
	}
	if c.MerchantID != nil && (*c.MerchantID < 1 || *c.MerchantID > SeedMerchants) {
		return unprocessable("unknown_merchant", "merchant_id %d does not exist (valid: 1..%d)", *c.MerchantID, SeedMerchants)
	}
	if c.Destination != nil {
		return validateDestination(*c.Destination)
	}
	return nil
}

func validateItems(items []Item) error {
	if len(items) == 0 {
		return unprocessable("empty_items", "items must hold at least one item")
	}
	if len(items) > MaxItems {
		return unprocessable("too_many_items", "items holds %d items, at most %d allowed", len(items), MaxItems)
	}
	for i, it := range items {
		if it.SKU == "" {
			return unprocessable("invalid_sku", "items[%d].sku must not be empty", i)
		}
		if len(it.SKU) > MaxSKULen {
			return unprocessable("invalid_sku", "items[%d].sku is %d bytes, at most %d allowed", i, len(it.SKU), MaxSKULen)
		}
		if !printable(it.SKU) {
			return unprocessable("invalid_sku", "items[%d].sku must be printable UTF-8 text", i)
		}
		if it.Quantity <= 0 {
			return unprocessable("invalid_quantity", "items[%d].quantity must be >= 1, got %d", i, it.Quantity)
		}
		if it.Quantity > MaxQuantity {
			return unprocessable("invalid_quantity", "items[%d].quantity must be <= %d, got %d", i, MaxQuantity, it.Quantity)
		}
	}
	return nil
}

func validateDestination(d string) error {
	if len(d) > MaxDestinationLen {
		return unprocessable("invalid_destination", "destination is %d bytes, at most %d allowed", len(d), MaxDestinationLen)
	}
	if !printable(d) {
		return unprocessable("invalid_destination", "destination must be printable UTF-8 text")
	}
	return nil
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// decodeJSON decodes exactly one JSON object into v, refusing unknown
// fields (also names that match a field only when case is ignored), text
// that is not UTF-8 and anything but an object at the top, and turns every
// failure into an *Error.
func decodeJSON(r io.Reader, v any) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return jsonError(err)
	}
	if !utf8.Valid(data) {
		return badRequest("malformed_json", "request body is not valid UTF-8 (JSON text must be UTF-8)")
	}
	// null decodes into a struct as "nothing", silently: reject every
	// well-formed body that is not an object before decoding.
	var probe any
	if json.Unmarshal(data, &probe) == nil {
		if _, ok := probe.(map[string]any); !ok {
			return badRequest("wrong_type", "request body must be a JSON object, got JSON %s", jsonValueKind(probe))
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if err := jsonkeys.Check(data, v); err != nil {
		return badRequest("unknown_field", "%v", err)
	}
	// Exactly one value: anything but trailing space is a mistake.
	var extra json.RawMessage
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
		return nil
	case err != nil:
		return jsonError(err)
	default:
		return badRequest("malformed_json", "request body holds more than one JSON value")
	}
}

func jsonError(err error) *Error {
	var (
		maxErr    *http.MaxBytesError
		syntaxErr *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &maxErr):
		return &Error{Status: http.StatusRequestEntityTooLarge, Code: "body_too_large",
			Message: fmt.Sprintf("request body is over %d bytes", maxErr.Limit)}
	case errors.Is(err, io.EOF):
		return badRequest("empty_body", "request body is empty; want a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("malformed_json", "request body ends in the middle of a JSON value")
	case errors.As(err, &syntaxErr):
		return badRequest("malformed_json", "invalid JSON at byte %d: %s", syntaxErr.Offset, syntaxErr.Error())
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return badRequest("wrong_type", "request body must be a JSON object, got JSON %s", typeErr.Value)
		}
		return badRequest("wrong_type", "field %q: want %s, got JSON %s", typeErr.Field, jsonKind(typeErr.Type.Kind().String()), typeErr.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return badRequest("unknown_field", "%s", strings.TrimPrefix(err.Error(), "json: "))
	default:
		return badRequest("malformed_json", "cannot decode request body: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
}

// jsonValueKind names the kind of a decoded JSON value.
func jsonValueKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case []any:
		return "array"
	case string:
		return "string"
	case bool:
		return "boolean"
	case float64:
		return "number"
	}
	return "object"
}

func jsonKind(goKind string) string {
	switch goKind {
	case "int", "int64", "int32", "uint", "uint64":
		return "an integer"
	case "string":
		return "a string"
	case "slice":
		return "an array"
	case "struct", "map":
		return "an object"
	case "bool":
		return "a boolean"
	default:
		return goKind
	}
}
