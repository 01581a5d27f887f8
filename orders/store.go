package orders

import (
	"context"
	"time"
)

// Store persists orders. Implementations must be safe for concurrent use
// and must honour ctx deadlines on every call: a store that cannot reach its
// database returns an error when ctx ends instead of blocking.
type Store interface {
	// Create stores a new order with version 1, status pending and delivery
	// standard/pending. With an IdempotencyKey it is exactly-once across
	// processes: a later Create with the same key returns the first order
	// and created=false, or ErrIdempotencyMismatch when the fingerprint
	// differs. Unknown customer or merchant ids yield ErrUnknownCustomer or
	// ErrUnknownMerchant.
	Create(ctx context.Context, o NewOrder) (order Order, created bool, err error)
	// Get returns the order with id, or ErrNotFound.
	Get(ctx context.Context, id int64) (Order, error)
	// Update applies u when the order's version is version, bumping the
	// version; ErrVersionConflict when it is not, ErrNotFound when there is
	// no such order.
	Update(ctx context.Context, id, version int64, u OrderUpdate) (Order, error)
	// UpdateDelivery applies u and bumps the version. With version > 0 it
	// behaves like Update (ErrVersionConflict on a stale version); with
	// version 0 it applies unconditionally.
	UpdateDelivery(ctx context.Context, id, version int64, u DeliveryUpdate) (Order, error)
	// ListSince returns at most limit orders created at or after since,
	// newest first.
	ListSince(ctx context.Context, since time.Time, limit int) ([]Order, error)
	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	// Close releases the store's connections.
	Close() error
}
