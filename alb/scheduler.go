package alb

import (
	"container/heap"
	"context"
	"sync"
	"time"
)

// scheduler runs functions at given times, one at a time, in time order
// (ties in submission order). It carries control-plane latency and
// deregistration delays.
type scheduler struct {
	mu    sync.Mutex
	items schedHeap
	seq   uint64
	wake  chan struct{}
}

type schedItem struct {
	due time.Time
	seq uint64
	fn  func()
}

type schedHeap []schedItem

func (h schedHeap) Len() int { return len(h) }
func (h schedHeap) Less(i, j int) bool {
	if h[i].due.Equal(h[j].due) {
		return h[i].seq < h[j].seq
	}
	return h[i].due.Before(h[j].due)
}
func (h schedHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *schedHeap) Push(x any)   { *h = append(*h, x.(schedItem)) }
func (h *schedHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}

func newScheduler() *scheduler { return &scheduler{wake: make(chan struct{}, 1)} }

// at schedules fn to run at due.
func (s *scheduler) at(due time.Time, fn func()) {
	s.mu.Lock()
	s.seq++
	heap.Push(&s.items, schedItem{due: due, seq: s.seq, fn: fn})
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// run executes due functions until ctx ends; pending ones are dropped.
func (s *scheduler) run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		s.mu.Lock()
		var next func()
		wait := time.Hour
		if len(s.items) > 0 {
			if d := time.Until(s.items[0].due); d <= 0 {
				next = heap.Pop(&s.items).(schedItem).fn
			} else {
				wait = d
			}
		}
		s.mu.Unlock()
		if next != nil {
			next()
			continue
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-timer.C:
		}
	}
}
