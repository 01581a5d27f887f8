// Package orders is the orders ("logistics") HTTP API of zerodrop serve and
// the Store interface its persistence implements.
//
// The API lives under /logistics: create an order (idempotent with the
// Idempotency-Key header), read it, update it with optimistic concurrency
// (version in the body or If-Match), update its delivery, and list today's
// orders. Every client mistake is answered with a 4xx and a JSON body
// {"error":{"code","message"}}; a store that fails or does not answer in time
// yields 503. The implementations of Store live in orders/store.
package orders

import (
	"errors"
	"fmt"
	"time"
)

// Seed data: every store holds this many customers and merchants, with ids
// 1..SeedCustomers and 1..SeedMerchants, created once by its migrations.
const (
	SeedCustomers = 100
	SeedMerchants = 100
)

// Limits on a request. They keep one request cheap and bound what a client
// can make the server store.
const (
	MaxBodyBytes      = 64 << 10 // request bodies above this are refused with 413
	MaxItems          = 100      // items per order
	MaxQuantity       = 10000    // quantity per item
	MaxSKULen         = 64       // bytes
	MaxDestinationLen = 512      // bytes
	MaxIdempotencyKey = 255      // bytes
	DefaultTodayLimit = 50
	MaxTodayLimit     = 500
)

// Status is the life-cycle state of an order.
type Status string

// Order statuses.
const (
	StatusPending   Status = "pending"
	StatusConfirmed Status = "confirmed"
	StatusShipped   Status = "shipped"
	StatusDelivered Status = "delivered"
	StatusCancelled Status = "cancelled"
)

// Statuses lists every valid Status.
func Statuses() []Status {
	return []Status{StatusPending, StatusConfirmed, StatusShipped, StatusDelivered, StatusCancelled}
}

// Valid reports whether s is one of Statuses.
func (s Status) Valid() bool { return oneOf(s, Statuses()) }

// DeliveryMethod is how an order travels.
type DeliveryMethod string

// Delivery methods.
const (
	MethodStandard DeliveryMethod = "standard"
	MethodExpress  DeliveryMethod = "express"
	MethodPickup   DeliveryMethod = "pickup"
)

// DeliveryMethods lists every valid DeliveryMethod.
func DeliveryMethods() []DeliveryMethod {
	return []DeliveryMethod{MethodStandard, MethodExpress, MethodPickup}
}

// Valid reports whether m is one of DeliveryMethods.
func (m DeliveryMethod) Valid() bool { return oneOf(m, DeliveryMethods()) }

// DeliveryStatus is where the delivery of an order stands.
type DeliveryStatus string

// Delivery statuses.
const (
	DeliveryPending    DeliveryStatus = "pending"
	DeliveryDispatched DeliveryStatus = "dispatched"
	DeliveryInTransit  DeliveryStatus = "in_transit"
	DeliveryDelivered  DeliveryStatus = "delivered"
	DeliveryFailed     DeliveryStatus = "failed"
)

// DeliveryStatuses lists every valid DeliveryStatus.
func DeliveryStatuses() []DeliveryStatus {
	return []DeliveryStatus{DeliveryPending, DeliveryDispatched, DeliveryInTransit, DeliveryDelivered, DeliveryFailed}
}

// Valid reports whether s is one of DeliveryStatuses.
func (s DeliveryStatus) Valid() bool { return oneOf(s, DeliveryStatuses()) }

func oneOf[T comparable](v T, set []T) bool {
	for _, x := range set {
		if v == x {
			return true
		}
	}
	return false
}

// Item is one line of an order.
type Item struct {
	SKU      string `json:"sku"`
	Quantity int64  `json:"quantity"`
}

// Delivery is the delivery state of an order.
type Delivery struct {
	Method DeliveryMethod `json:"method"`
	Status DeliveryStatus `json:"status"`
}

// Order is a stored order as the API returns it. Ids are int64 and appear
// in JSON as numbers; times are RFC 3339 in UTC with microseconds.
type Order struct {
	ID          int64     `json:"id"`
	CustomerID  int64     `json:"customer_id"`
	MerchantID  int64     `json:"merchant_id"`
	Items       []Item    `json:"items"`
	Destination string    `json:"destination"`
	Status      Status    `json:"status"`
	Delivery    Delivery  `json:"delivery"`
	Version     int64     `json:"version"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// NewOrder is what Store.Create stores. An empty Destination means the
// customer's address from the seed data.
type NewOrder struct {
	CustomerID  int64
	MerchantID  int64
	Items       []Item
	Destination string
	// IdempotencyKey, when not empty, makes Create return the order created
	// earlier with the same key instead of creating a second one.
	IdempotencyKey string
	// Fingerprint identifies the request that carried IdempotencyKey; a
	// second request with the same key and another fingerprint is refused
	// with ErrIdempotencyMismatch.
	Fingerprint string
}

// OrderUpdate changes some fields of an order; nil fields stay as they are.
type OrderUpdate struct {
	Items       []Item
	Destination *string
	Status      *Status
}

// DeliveryUpdate changes the delivery of an order; nil fields stay as they are.
type DeliveryUpdate struct {
	Method *DeliveryMethod
	Status *DeliveryStatus
}

// Errors a Store returns for conditions the API reports to the client.
// Stores wrap them; test with errors.Is.
var (
	ErrNotFound            = errors.New("order not found")
	ErrVersionConflict     = errors.New("order version conflict")
	ErrIdempotencyMismatch = errors.New("idempotency key reused with a different request")
	ErrUnknownCustomer     = errors.New("unknown customer")
	ErrUnknownMerchant     = errors.New("unknown merchant")
)

// TruncateTime is the precision every store keeps: UTC, microseconds.
func TruncateTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// ETag is the entity tag of an order version, as sent in the ETag header.
func ETag(version int64) string { return fmt.Sprintf("%q", fmt.Sprint(version)) }
