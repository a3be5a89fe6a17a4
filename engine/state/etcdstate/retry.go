package etcdstate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/reprise-si/reprise/internal/etcdconn"
)

// ErrInterrupted is returned by a write that gave up waiting for etcd
// because the store was interrupted (Interrupt) or closed.
var ErrInterrupted = errors.New("gave up waiting for etcd: interrupted")

// transient reports whether err may go away by itself: no leader, no
// quorum, no member reachable, a timeout. Errors about the request itself
// (too large, too many operations, permission denied) are not.
func transient(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, errRetryNow) {
		return true
	}
	if errors.Is(err, context.Canceled) {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	if _, ok := etcdconn.Code(err); !ok {
		return false
	}
	return !etcdconn.Refused(err)
}

// backoff waits before attempt n (from 1) of a write that failed with err:
// 50 ms doubling up to 2 s. It returns an error instead when the store is
// interrupted or every context in ctxs is done.
func (s *Store) backoff(n int, err error, ctxs []context.Context) error {
	d := 50 * time.Millisecond << min(n-1, 6)
	d = min(d, 2*time.Second)
	if n == 1 && s.opts.OnWait != nil && !errors.Is(err, errRetryNow) {
		s.opts.OnWait(err)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	all := make(chan struct{})
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for _, c := range ctxs {
			select {
			case <-c.Done():
			case <-stop:
				return
			}
		}
		close(all)
	}()
	select {
	case <-t.C:
		return nil
	case <-s.interrupt:
		return fmt.Errorf("%w (etcd at %s: %v)", ErrInterrupted, s.url, err)
	case <-all:
		return fmt.Errorf("etcd at %s: %v: %w", s.url, err, ctxs[0].Err())
	}
}

// retry runs fn until it succeeds or fails with an error that is not
// transient, waiting with backoff meanwhile (see backoff). Each attempt
// gets AttemptTimeout within parent.
func (s *Store) retry(parent context.Context, ctxs []context.Context, fn func(ctx context.Context) error) error {
	for n := 1; ; n++ {
		if err := s.giveUp(); err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(parent, s.attemptTimeout())
		err := fn(ctx)
		cancel()
		s.saw(err)
		if !transient(err) {
			if n > 1 && s.opts.OnWait != nil {
				s.opts.OnWait(nil)
			}
			return err
		}
		if berr := s.backoff(n, err, ctxs); berr != nil {
			return berr
		}
	}
}

// saw records whether etcd answered the last attempt.
func (s *Store) saw(err error) {
	if transient(err) && !errors.Is(err, errRetryNow) {
		s.unavailable.Store(time.Now().UnixNano())
	} else if err == nil {
		s.unavailable.Store(0)
	}
}

// giveUp fails at once, without waiting for an attempt to time out, a
// request made after Interrupt while etcd did not answer in the last few
// seconds: the process is stopping.
func (s *Store) giveUp() error {
	select {
	case <-s.interrupt:
		if t := s.unavailable.Load(); t != 0 && time.Since(time.Unix(0, t)) < 3*time.Second {
			return fmt.Errorf("%w (etcd at %s did not answer the last request)", ErrInterrupted, s.url)
		}
	default:
	}
	return nil
}

// attemptTimeout is AttemptTimeout, or at most a second once interrupted:
// a cluster that answers does so in milliseconds.
func (s *Store) attemptTimeout() time.Duration {
	select {
	case <-s.interrupt:
		return min(s.opts.AttemptTimeout, time.Second)
	default:
		return s.opts.AttemptTimeout
	}
}
