package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"math/bits"
	"math/rand/v2"
	"sync"
	"time"
)

// Serve re-checks the items a previous run left in sending or verifying,
// then sends due items with Config.Workers workers until ctx ends. It
// returns nil when ctx ends and an error when the database fails (the
// supervisor restarts it; items in flight are then re-checked).
func (o *Outbox) Serve(ctx context.Context) error {
	if err := o.recoverInterrupted(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	slots := make(chan struct{}, o.cfg.Workers)
	for range o.cfg.Workers {
		slots <- struct{}{}
	}
	fatal := make(chan error, o.cfg.Workers)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-slots:
		case <-ctx.Done():
			return nil
		case err := <-fatal:
			return err
		}
		it, wait, err := o.next(ctx)
		if err == nil && it != nil && o.gate != nil {
			if err = o.gate.Wait(ctx); err == nil {
				// The wait may have been long: take the most urgent item now.
				it, wait, err = o.next(ctx)
			} else if ctx.Err() == nil {
				err = fmt.Errorf("outbox: wait for the sending window: %w", err)
			}
		}
		if err == nil && it != nil {
			var claimed bool
			if claimed, err = o.claim(ctx, it); err == nil && claimed {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := o.work(ctx, *it); err != nil {
						fatal <- err
					}
					slots <- struct{}{}
					o.poke() // its item may be due again sooner than the timer
				}()
				continue
			}
		}
		slots <- struct{}{}
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		if it != nil {
			continue // lost a race for it; look again
		}
		var tick <-chan time.Time
		if wait >= 0 {
			timer.Reset(wait)
			tick = timer.C
		}
		select {
		case <-o.wake:
		case <-tick:
		case <-ctx.Done():
		case err := <-fatal:
			return err
		}
		timer.Stop()
	}
}

// recoverInterrupted puts back in the queue, due now, the items a previous
// run was sending or verifying when it stopped: their next attempt starts
// by checking the destination, so nothing is sent blindly twice. Items
// interrupted too often fail, so that one cannot crash-loop the box.
func (o *Outbox) recoverInterrupted(ctx context.Context) error {
	now := o.cfg.Now().UnixMilli()
	tx, err := o.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("outbox recover: %w", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE outbox_items SET state = 'queued', recoveries = recoveries + 1,
		next_attempt = ?, updated_at = ? WHERE state IN ('sending', 'verifying')`, now, now)
	if err != nil {
		return fmt.Errorf("outbox recover: %w", err)
	}
	n, _ := res.RowsAffected()
	fe := errTooManyRecoveries(o.cfg.MaxRecoveries + 1).(*itemError)
	res, err = tx.ExecContext(ctx, `UPDATE outbox_items SET state = 'failed-permanent', last_error = ?,
		last_error_en = ?, updated_at = ? WHERE state = 'queued' AND recoveries > ?`, fe.fr, fe.en, now, o.cfg.MaxRecoveries)
	if err != nil {
		return fmt.Errorf("outbox recover: %w", err)
	}
	failed, _ := res.RowsAffected()
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("outbox recover: %w", err)
	}
	if n > 0 {
		o.m.recovered.Add(n)
		o.log.Info("outbox: items interrupted by the last stop will be checked at the destination first",
			"items", n, "set_aside", failed)
	}
	return nil
}

// next returns the most urgent due item, or how long until one is due (-1:
// nothing queued).
func (o *Outbox) next(ctx context.Context) (*ItemStatus, time.Duration, error) {
	now := o.cfg.Now().UnixMilli()
	s, err := scanItem(o.db.QueryRowContext(ctx, selectItem+` WHERE state = 'queued' AND next_attempt <= ?
		ORDER BY priority DESC, created_at, key LIMIT 1`, now))
	if err == nil {
		return &s, 0, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return nil, 0, fmt.Errorf("outbox: next item: %w", err)
	}
	var at sql.NullInt64
	if err := o.db.QueryRowContext(ctx, `SELECT min(next_attempt) FROM outbox_items WHERE state = 'queued'`).Scan(&at); err != nil {
		return nil, 0, fmt.Errorf("outbox: next item: %w", err)
	}
	if !at.Valid {
		return nil, -1, nil
	}
	return nil, max(time.Duration(at.Int64-now)*time.Millisecond, time.Millisecond), nil
}

// claim moves it from queued to sending and counts the attempt, before any
// byte leaves.
func (o *Outbox) claim(ctx context.Context, it *ItemStatus) (bool, error) {
	now := o.cfg.Now().UnixMilli()
	res, err := o.db.ExecContext(ctx, `UPDATE outbox_items SET state = 'sending', attempts = attempts + 1,
		updated_at = ? WHERE key = ? AND state = 'queued'`, now, it.Key)
	if err != nil {
		return false, fmt.Errorf("outbox: claim %q: %w", it.Key, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return false, nil
	}
	it.State = StateSending
	it.Attempts++
	it.UpdatedAt = time.UnixMilli(now)
	o.changed(*it)
	return true, nil
}

// work runs one attempt of it and records its outcome. It returns an error
// only when the outcome cannot be recorded.
func (o *Outbox) work(ctx context.Context, it ItemStatus) error {
	f := &flight{size: it.Size}
	o.mu.Lock()
	o.inFlight[it.Key] = f
	o.mu.Unlock()
	defer func() {
		o.mu.Lock()
		delete(o.inFlight, it.Key)
		o.mu.Unlock()
	}()
	err := o.attempt(ctx, it, f)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		// Stopping: back to the queue, due at once, with no penalty; the
		// next run checks the destination first.
		bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		now := o.cfg.Now().UnixMilli()
		if _, err := o.db.ExecContext(bg, `UPDATE outbox_items SET state = 'queued', next_attempt = ?, updated_at = ?
			WHERE key = ? AND state IN ('sending', 'verifying')`, now, now, it.Key); err != nil {
			o.log.Warn("outbox: put the item back in the queue; the next start will", "key", it.Key, "err", err)
		}
		return nil
	}
	var dbErr *dbError
	if errors.As(err, &dbErr) {
		return dbErr.err
	}
	fl := Classify(err)
	now := o.cfg.Now()
	if fl.Permanent {
		o.m.permanent.Add(1)
		o.log.Warn("outbox: item failed for good", "key", it.Key, "path", it.RemotePath, "attempts", it.Attempts, "err", fl.EN)
		return o.record(ctx, it.Key, `UPDATE outbox_items SET state = 'failed-permanent', last_error = ?,
			last_error_en = ?, updated_at = ? WHERE key = ? AND state IN ('sending', 'verifying')`,
			fl.FR, fl.EN, now.UnixMilli(), it.Key)
	}
	o.m.transient.Add(1)
	wait := o.backoff(it.Attempts, fl.RetryAfter)
	// Log the first failures and then ever more rarely: a cut that lasts
	// a week must not flood the journal.
	if bits.OnesCount(uint(it.Attempts)) == 1 {
		o.log.Info("outbox: attempt failed, will retry", "key", it.Key, "attempts", it.Attempts, "retry_in", wait.Round(time.Second), "err", fl.EN)
	}
	return o.record(ctx, it.Key, `UPDATE outbox_items SET state = 'queued', next_attempt = ?, last_error = ?,
		last_error_en = ?, updated_at = ? WHERE key = ? AND state IN ('sending', 'verifying')`,
		now.Add(wait).UnixMilli(), fl.FR, fl.EN, now.UnixMilli(), it.Key)
}

// dbError marks a failure to record a transition: it stops Serve rather
// than being retried as the item's error.
type dbError struct{ err error }

func (e *dbError) Error() string { return e.err.Error() }
func (e *dbError) Unwrap() error { return e.err }

// record runs one transition and tells the OnChange callbacks.
func (o *Outbox) record(ctx context.Context, key, query string, args ...any) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if _, err := o.db.ExecContext(ctx, query, args...); err != nil {
		return fmt.Errorf("outbox: record the state of %q: %w", key, err)
	}
	if st, err := o.Get(ctx, key); err == nil {
		o.changed(st)
	}
	return nil
}

func (o *Outbox) transition(ctx context.Context, key, query string, args ...any) error {
	if err := o.record(ctx, key, query, args...); err != nil {
		return &dbError{err}
	}
	return nil
}

// backoff is the delay before the next attempt: RetryMin doubled per
// attempt up to RetryMax, half of it random (so that items and boxes do
// not retry in step), and never less than the server's Retry-After.
func (o *Outbox) backoff(attempts int, retryAfter time.Duration) time.Duration {
	d := o.cfg.RetryMin
	for i := 1; i < attempts && d < o.cfg.RetryMax; i++ {
		d *= 2
	}
	d = min(d, o.cfg.RetryMax)
	d = d/2 + rand.N(d/2+1)
	if retryAfter > 0 {
		d = max(d, min(retryAfter, o.cfg.MaxRetryAfter))
	}
	return d
}

// attempt checks the destination, sends the body when the file is not
// there yet and verifies it. A nil error means the item is delivered.
func (o *Outbox) attempt(ctx context.Context, it ItemStatus, f *flight) error {
	conn, err := o.conns.Connector(it.Destination)
	if err != nil {
		return fmt.Errorf("destination %q: %w", it.Destination, err)
	}
	// An item that may have been sent before is looked for first, so that
	// it is not sent again. A first attempt skips that round trip (on a
	// 300 ms uplink it is a fifth of a small file's time): Upload never
	// overwrites (the check is the server's own, atomic: MOVE with
	// Overwrite: F, If-None-Match: *), and the file is inspected after.
	canStat := true
	if it.Attempts > 1 || it.Recoveries > 0 {
		size, sum, exists, err := conn.Stat(ctx, it.RemotePath)
		switch {
		case errors.Is(err, errors.ErrUnsupported):
			canStat = false
		case err != nil:
			return err
		case exists:
			if size != it.Size || (sum != "" && sum != it.SHA256) {
				return errConflict(it.RemotePath, size, it.Size)
			}
			// An earlier attempt delivered it (its outcome was lost in a
			// cut or a stop): done without sending a byte.
			return o.delivered(ctx, conn, it, howFound)
		}
	}

	body, err := o.blobs.OpenBlob(it.BlobHash)
	if errors.Is(err, fs.ErrNotExist) {
		return errBlobMissing(it.BlobHash, err)
	}
	if err != nil {
		return fmt.Errorf("open blob %s: %w", it.BlobHash, err)
	}
	defer body.Close()
	if fi, err := body.Stat(); err != nil {
		return fmt.Errorf("open blob %s: %w", it.BlobHash, err)
	} else if fi.Size() != it.Size {
		return errBlobMissing(it.BlobHash, fmt.Errorf("blob has %d bytes, want %d", fi.Size(), it.Size))
	}
	o.mu.Lock()
	fns := append([]func(Progress){}, o.onProgress...)
	o.mu.Unlock()
	var mu sync.Mutex // connectors may report from several goroutines
	var last time.Time
	report := func(sent int64) {
		f.sent.Store(sent)
		if len(fns) == 0 {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if now := time.Now(); sent >= it.Size || now.Sub(last) >= o.cfg.ProgressEvery {
			last = now
			for _, fn := range fns {
				fn(Progress{Key: it.Key, Sent: sent, Size: it.Size})
			}
		}
	}
	placed := false
	if pl, ok := conn.(Placer); ok {
		placed, err = pl.UploadPlaced(ctx, it.RemotePath, body, it.Size, it.SHA256, report)
	} else {
		err = conn.Upload(ctx, it.RemotePath, body, it.Size, it.SHA256, report)
	}
	if err != nil {
		return err
	}
	if err := o.transition(ctx, it.Key, `UPDATE outbox_items SET state = 'verifying', updated_at = ?
		WHERE key = ? AND state = 'sending'`, o.cfg.Now().UnixMilli(), it.Key); err != nil {
		return err
	}
	if placed {
		return o.delivered(ctx, conn, it, howSent)
	}
	if canStat {
		size, sum, exists, err := conn.Stat(ctx, it.RemotePath)
		switch {
		case errors.Is(err, errors.ErrUnsupported):
			return o.delivered(ctx, conn, it, howUnverified)
		case err != nil:
			return err
		case !exists:
			return errMissingAfterSend(it.RemotePath)
		case size != it.Size || (sum != "" && sum != it.SHA256):
			return errConflict(it.RemotePath, size, it.Size)
		}
		return o.delivered(ctx, conn, it, howSent)
	}
	return o.delivered(ctx, conn, it, howUnverified)
}

// How an item was delivered.
const (
	howSent       = "sent"       // sent, then seen at the destination
	howFound      = "found"      // seen at the destination before sending
	howUnverified = "unverified" // sent; the destination cannot be inspected
)

// delivered cleans what earlier attempts may have left, then records the
// delivery.
func (o *Outbox) delivered(ctx context.Context, conn Connector, it ItemStatus, how string) error {
	if it.Attempts > 1 || it.Recoveries > 0 {
		if err := conn.Cleanup(ctx, it.RemotePath); err != nil {
			// A transient failure retries the item: its next attempt finds
			// the file in place and cleans again. A permanent one (the
			// destination forbids deleting) is only logged.
			if ctx.Err() != nil || !Classify(err).Permanent {
				return err
			}
			o.log.Info("outbox: could not remove what earlier attempts left", "key", it.Key, "err", err)
		}
	}
	now := o.cfg.Now().UnixMilli()
	if err := o.transition(ctx, it.Key, `UPDATE outbox_items SET state = 'delivered', verified = ?, last_error = '',
		last_error_en = '', delivered_at = ?, updated_at = ? WHERE key = ? AND state IN ('sending', 'verifying')`,
		how != howUnverified, now, now, it.Key); err != nil {
		return err
	}
	switch how {
	case howSent:
		o.m.sent.Add(1)
		o.m.deliveredBytes.Add(it.Size)
	case howFound:
		o.m.found.Add(1)
	case howUnverified:
		o.m.unverified.Add(1)
		o.m.deliveredBytes.Add(it.Size)
	}
	o.log.Debug("outbox: delivered", "key", it.Key, "path", it.RemotePath, "attempts", it.Attempts, "how", how)
	return nil
}
