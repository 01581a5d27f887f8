package drain

import (
	"context"
	"errors"
	"fmt"
	"time"
)

type hook struct {
	name string
	fn   func(context.Context) error
}

// OnShutdown registers a cleanup hook, for example closing a database pool.
// Hooks run after the drain (every connection closed), last registered
// first, one at a time; each gets a context that ends after the hook
// timeout (WithHookTimeout, default 3 s). A hook that overruns is abandoned
// and reported as an error; a panicking hook is reported as an error too.
// Errors are joined into the error Serve returns and listed in Report.
func (s *Server) OnShutdown(name string, fn func(context.Context) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hooks = append(s.hooks, hook{name: name, fn: fn})
}

// ErrHookTimeout is wrapped by the error of a hook that did not return
// within the hook timeout.
var ErrHookTimeout = errors.New("drain: shutdown hook timed out")

func (s *Server) runHooks(base context.Context) ([]HookResult, error) {
	s.mu.Lock()
	hooks := append([]hook(nil), s.hooks...)
	s.mu.Unlock()
	var (
		results []HookResult
		errs    []error
	)
	for i := len(hooks) - 1; i >= 0; i-- {
		h := hooks[i]
		start := time.Now()
		err := s.runHook(base, h)
		res := HookResult{Name: h.name, Duration: time.Since(start)}
		if err != nil {
			err = fmt.Errorf("drain: shutdown hook %q: %w", h.name, err)
			res.Err = err.Error()
			errs = append(errs, err)
			s.cfg.logger.Warn("drain: shutdown hook failed", "hook", h.name, "err", err)
		} else {
			s.cfg.logger.Info("drain: shutdown hook done", "hook", h.name, "took", res.Duration.String())
		}
		results = append(results, res)
	}
	return results, errors.Join(errs...)
}

func (s *Server) runHook(base context.Context, h hook) error {
	ctx, cancel := context.WithTimeout(base, s.cfg.hookTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- fmt.Errorf("panic: %v", p)
			}
		}()
		done <- h.fn(ctx)
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		// Give a hook that honours ctx the chance to report its own error.
		select {
		case err := <-done:
			if err != nil {
				return fmt.Errorf("%w after %s: %w", ErrHookTimeout, s.cfg.hookTimeout, err)
			}
			return nil
		case <-time.After(10 * time.Millisecond):
		}
		return fmt.Errorf("%w after %s", ErrHookTimeout, s.cfg.hookTimeout)
	}
}
