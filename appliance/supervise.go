package appliance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// FatalError stops the whole box: the supervisor does not restart a part
// that returned it, and preau exits with a distinct status.
type FatalError struct{ Err error }

func (e *FatalError) Error() string { return "fatal: " + e.Err.Error() }
func (e *FatalError) Unwrap() error { return e.Err }

// part is one long-running piece of the box, run by the supervisor.
type part struct {
	name string
	// serve runs until ctx ends; a nil return before that is a stop too.
	serve func(ctx context.Context) error
	// critical parts (the listeners) are not restarted: their failure
	// stops the box, because a restart cannot rebind an inherited socket.
	critical bool
}

// supervise runs every part and restarts failed, non-critical ones with
// exponential backoff (1 s doubling to 1 min, reset after a minute of
// health). It returns when ctx ends (nil) or a part fails fatally.
func supervise(ctx context.Context, log *slog.Logger, parts []part) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for _, p := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			backoff := time.Second
			for {
				start := time.Now()
				err := safeServe(ctx, p.serve)
				if ctx.Err() != nil {
					return
				}
				var fe *FatalError
				if p.critical || errors.As(err, &fe) {
					if err == nil {
						err = errors.New("stopped unexpectedly")
					}
					cancel(fmt.Errorf("%s: %w", p.name, err))
					return
				}
				if time.Since(start) > time.Minute {
					backoff = time.Second
				}
				log.Error("part failed, restarting", "part", p.name, "err", err, "in", backoff)
				t := time.NewTimer(backoff)
				select {
				case <-ctx.Done():
					t.Stop()
					return
				case <-t.C:
				}
				backoff = min(backoff*2, time.Minute)
			}
		}()
	}
	<-ctx.Done()
	wg.Wait()
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return nil
}

// safeServe turns a panic in a part into an error, so one broken part does
// not take the box down.
func safeServe(ctx context.Context, serve func(context.Context) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return serve(ctx)
}
