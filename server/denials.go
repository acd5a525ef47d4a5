package server

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/rotor-dev/rotor/audit"
)

// Defaults of the denial limits; see [WithDenialLimits].
const (
	// DefaultDenialRate and DefaultDenialBurst bound the refused requests
	// (401 and 403) one client may make before the next ones are answered
	// 429 without being looked at further.
	DefaultDenialRate  = 5 // per second
	DefaultDenialBurst = 20
	// DefaultDenialWindow is how long repeated denials of one client are
	// summed up in one audit record instead of one record each.
	DefaultDenialWindow = time.Minute
	// maxDenialRecords bounds the audit records written for denials, from
	// all clients together, per window; the denials beyond are counted in
	// one summary per window.
	maxDenialRecords = 200
	// maxTrackedClients bounds the memory denial tracking takes; clients
	// beyond it share one entry, manyClients.
	maxTrackedClients = 10000
	manyClients       = "*"
)

// Denial outcomes, in [RequestInfo].Denial.
const (
	// DenialRecorded: the refusal was written to the audit log as a
	// record of its own.
	DenialRecorded = "recorded"
	// DenialCoalesced: the refusal was counted in a summary record of
	// its client's window.
	DenialCoalesced = "coalesced"
	// DenialRateLimited: the client had used up its refusals; the
	// request was answered 429 (and recorded, or counted in a summary,
	// like any other refusal).
	DenialRateLimited = "rate_limited"
)

// WithDenialLimits sets how refused requests are limited and recorded:
// each client (its address when it sent no valid credential, else its
// authenticated identity) may be refused perSecond times a second, with
// bursts of burst, before its further requests that fail authentication
// or authorisation are answered 429 Too Many Requests; and within each
// window only a client's first refusal is written to the audit log in
// full, the others being summed up in one record when the window ends.
// Requests that authenticate and are allowed are never limited, so valid
// callers keep being served during a flood (from the same address too).
// Defaults: [DefaultDenialRate], [DefaultDenialBurst],
// [DefaultDenialWindow].
func WithDenialLimits(perSecond float64, burst int, window time.Duration) Option {
	return func(o *options) { o.denyRate, o.denyBurst, o.denyWindow = perSecond, burst, window }
}

// denials limits and coalesces the audit records of refused requests.
// Every refusal still shows in the observer (metrics); what it bounds is
// what reaches the audit log: per window, whatever the number of clients
// or requests, at most maxDenialRecords refusals recorded one by one (a
// client's first), one summary for each of those clients, and one summary
// of the refusals of every other client.
type denials struct {
	log    AuditLog
	onErr  func(error)
	rate   rate.Limit
	burst  int
	window time.Duration
	now    func() time.Time

	mu      sync.Mutex
	clients map[string]*client
	// windowStart and written count the records of the current global
	// window; dropped the refusals beyond maxDenialRecords in it.
	windowStart time.Time
	written     int
	dropped     int
}

// client is what denials know of one caller: an address for requests
// without a valid credential, an identity for authenticated ones.
type client struct {
	limiter     *rate.Limiter
	initiator   string    // for the summary record
	last        time.Time // of its last refusal
	windowStart time.Time // of the client's current window
	recorded    bool      // its first refusal in the window was recorded
	counted     int       // refusals in the window not recorded one by one
	limited     int       // of which answered 429
}

func newDenials(log AuditLog, perSecond float64, burst int, window time.Duration, onErr func(error)) *denials {
	return &denials{log: log, onErr: onErr, rate: rate.Limit(perSecond), burst: burst, window: window, now: time.Now, clients: map[string]*client{}}
}

// decide says what to do with a refusal of the client whose audit
// identity is initiator ("unauthenticated:<address>" or the principal's
// subject): answer 429 (limited), and whether to write its record. It may
// first write the summary of the client's previous window.
//
// A client's first refusal in a window is recorded, 429 or not, while the
// window's cap on records allows; its later refusals are counted in its
// summary. A client that comes after the cap is counted in the window's
// one summary of the rest, so that a window adds at most maxDenialRecords
// records, as many summaries, and one more.
func (d *denials) decide(ctx context.Context, initiator string) (limited, record bool) {
	now := d.now()
	var summaries []audit.Event
	d.mu.Lock()
	key := initiator
	c, ok := d.clients[key]
	if !ok {
		if len(d.clients) >= maxTrackedClients {
			key = manyClients
			c = d.clients[key]
		}
		if c == nil {
			c = &client{limiter: rate.NewLimiter(d.rate, d.burst), windowStart: now}
			d.clients[key] = c
		}
	}
	if key == manyClients {
		initiator = "(many callers)"
	}
	c.initiator, c.last = initiator, now
	if now.Sub(c.windowStart) >= d.window {
		if e, ok := c.summary(now); ok {
			summaries = append(summaries, e)
		}
		c.windowStart, c.recorded, c.counted, c.limited = now, false, 0, 0
	}
	if now.Sub(d.windowStart) >= d.window {
		if e, ok := d.dropSummary(now); ok {
			summaries = append(summaries, e)
		}
		d.windowStart, d.written, d.dropped = now, 0, 0
	}
	limited = !c.limiter.AllowN(now, 1)
	switch {
	case c.recorded:
		// Summed up in the client's summary at the end of its window.
		c.counted++
		if limited {
			c.limited++
		}
	case d.written < maxDenialRecords:
		c.recorded, record = true, true
		d.written++
	default:
		// The window's cap on records was reached before this client's
		// first refusal: summed up with the others in one record.
		d.dropped++
	}
	d.mu.Unlock()
	d.append(ctx, summaries)
	return limited, record
}

// summary is the record of a client's refusals in a window that were not
// written one by one.
func (c *client) summary(now time.Time) (audit.Event, bool) {
	if c.counted == 0 {
		return audit.Event{}, false
	}
	detail := fmt.Sprintf("%d more refused requests between %s and %s were not recorded one by one", c.counted,
		c.windowStart.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	if c.limited > 0 {
		detail += fmt.Sprintf(" (%d of them answered 429: too many refusals)", c.limited)
	}
	return audit.Event{Initiator: c.initiator, Action: "api.denied", Status: audit.StatusDenied, Detail: detail}, true
}

// dropSummary is the record of the refusals a window's cap on records
// left out.
func (d *denials) dropSummary(now time.Time) (audit.Event, bool) {
	if d.dropped == 0 {
		return audit.Event{}, false
	}
	return audit.Event{Initiator: audit.InitiatorSystem, Action: "api.denied", Status: audit.StatusDenied,
		Detail: fmt.Sprintf("%d more refused requests between %s and %s, from clients beyond the first %d recorded, were not recorded one by one",
			d.dropped, d.windowStart.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), maxDenialRecords)}, true
}

// flush writes the summaries of the windows that have ended (all of them
// when final) and forgets clients that have been quiet for a window.
func (d *denials) flush(ctx context.Context, final bool) {
	now := d.now()
	var summaries []audit.Event
	d.mu.Lock()
	for key, c := range d.clients {
		if final || now.Sub(c.windowStart) >= d.window {
			if e, ok := c.summary(now); ok {
				summaries = append(summaries, e)
			}
			// Quiet for a window and no longer limited: nothing is
			// lost by forgetting it.
			if !final && now.Sub(c.last) >= d.window && c.limiter.TokensAt(now) >= float64(d.burst) {
				delete(d.clients, key)
				continue
			}
			c.windowStart, c.recorded, c.counted, c.limited = now, false, 0, 0
		}
	}
	if final || now.Sub(d.windowStart) >= d.window {
		if e, ok := d.dropSummary(now); ok {
			summaries = append(summaries, e)
		}
		d.windowStart, d.written, d.dropped = now, 0, 0
	}
	d.mu.Unlock()
	d.append(ctx, summaries)
}

// run flushes ended windows until ctx is done, then flushes the rest.
func (d *denials) run(ctx context.Context) {
	// A window shorter than a second (tests: every refusal recorded)
	// needs no faster flushing: each refusal opens a new window anyway.
	t := time.NewTicker(max(d.window, time.Second))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			d.flush(context.WithoutCancel(ctx), true)
			return
		case <-t.C:
			d.flush(ctx, false)
		}
	}
}

func (d *denials) append(ctx context.Context, es []audit.Event) {
	for _, e := range es {
		if _, err := d.log.Append(context.WithoutCancel(ctx), e); err != nil {
			d.onErr(err)
		}
	}
}

// tooMany answers a client that used up its refusals, telling it when
// its next refusal would be allowed again.
func (d *denials) tooMany(w http.ResponseWriter) {
	w.Header().Set("Retry-After", d.retryAfter())
	writeError(w, http.StatusTooManyRequests, ErrorDetail{Code: CodeTooManyRequests, Message: "too many refused requests; slow down"})
}

// retryAfter is the Retry-After of a 429: the seconds until the caller
// may be refused again without being limited.
func (d *denials) retryAfter() string { return strconv.Itoa(int(math.Ceil(1 / float64(d.rate)))) }
