package audit

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Sink is somewhere records are shipped as they are written: a log
// collector reading stdout, a syslog server, an OpenTelemetry collector.
// Ship delivers recs, in order, or returns an error; it may be called again
// with the same records after an error, so a sink that cannot tell
// whether a delivery failed part-way may deliver a record twice (records
// carry seq and hash to tell duplicates apart).
type Sink interface {
	Ship(ctx context.Context, recs []Record) error
}

// ShipperOptions tune a [Shipper]; zero values take the defaults.
type ShipperOptions struct {
	// Buffer is how many records wait for the sink at most (default
	// 10,000). When it is full the oldest are dropped, and counted.
	Buffer int
	// Batch is how many records one Ship call carries at most (default
	// 500).
	Batch int
	// MinBackoff and MaxBackoff bound the wait between retries after a
	// failure (defaults 100ms and 30s); the wait doubles each time.
	MinBackoff, MaxBackoff time.Duration
	// Timeout bounds one Ship call (default 10s).
	Timeout time.Duration
}

// ShipperState is a sink's health, for metrics and `rotor doctor`.
type ShipperState struct {
	// Name names the sink, e.g. "syslog".
	Name string
	// Up is false from a failed delivery to the next successful one.
	Up bool
	// Shipped and Dropped count records delivered, and records dropped
	// because the buffer was full.
	Shipped, Dropped uint64
	// Pending is the number of records waiting.
	Pending int
	// LastError is the last delivery error, "" after a success.
	LastError string
	// LastShipped is when a delivery last succeeded.
	LastShipped time.Time
}

// Shipper delivers records to a Sink in the background from a bounded
// buffer, retrying with backoff. Offer never blocks and never fails, so a
// sink that is slow or down cannot hold up or break the audit chain: it
// only loses records, counted in its state, once its buffer is full. The
// chain itself keeps every record; a sink is a copy.
type Shipper struct {
	name string
	sink Sink
	o    ShipperOptions

	mu    sync.Mutex
	queue []Record
	// head counts the records ever removed from the front of queue
	// (shipped or dropped): queue[0] is record number head of all those
	// offered, so that a batch in flight knows what became of it.
	head    uint64
	state   ShipperState
	wake    chan struct{}
	closing bool
	stopc   <-chan struct{} // ends the retries of a closing shipper
	done    chan struct{}
}

// NewShipper starts delivering to sink; stop it with Close.
func NewShipper(name string, sink Sink, o ShipperOptions) *Shipper {
	if o.Buffer <= 0 {
		o.Buffer = 10_000
	}
	if o.Batch <= 0 {
		o.Batch = 500
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 100 * time.Millisecond
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(30*time.Second, o.MinBackoff)
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	s := &Shipper{name: name, sink: sink, o: o, wake: make(chan struct{}, 1), done: make(chan struct{})}
	s.state = ShipperState{Name: name, Up: true}
	go s.run()
	return s
}

// Offer queues recs for the sink without waiting.
func (s *Shipper) Offer(recs []Record) {
	if len(recs) == 0 {
		return
	}
	s.mu.Lock()
	s.queue = append(s.queue, recs...)
	if over := len(s.queue) - s.o.Buffer; over > 0 {
		s.queue = append(s.queue[:0], s.queue[over:]...)
		s.head += uint64(over)
		s.state.Dropped += uint64(over)
	}
	s.mu.Unlock()
	s.poke()
}

// State returns the sink's health now.
func (s *Shipper) State() ShipperState {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state
	st.Pending = len(s.queue)
	return st
}

// Close delivers what is queued, retrying until ctx ends, then stops the
// shipper. Records still queued then are dropped, and counted.
func (s *Shipper) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closing, s.stopc = true, ctx.Done()
	s.mu.Unlock()
	s.poke()
	<-s.done
	if st := s.State(); st.LastError != "" {
		return errors.New("audit sink " + s.name + ": " + st.LastError)
	}
	return nil
}

func (s *Shipper) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Shipper) run() {
	defer close(s.done)
	backoff := s.o.MinBackoff
	for {
		s.mu.Lock()
		batch := append([]Record(nil), s.queue[:min(len(s.queue), s.o.Batch)]...)
		first := s.head
		closing, stopc := s.closing, s.stopc
		s.mu.Unlock()
		if len(batch) == 0 {
			if closing {
				return
			}
			<-s.wake
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.o.Timeout)
		err := s.sink.Ship(ctx, batch)
		cancel()
		s.mu.Lock()
		if err != nil {
			s.state.Up, s.state.LastError = false, err.Error()
			s.mu.Unlock()
			select {
			case <-time.After(backoff):
			case <-s.wake: // Close was called: look again
			case <-stopc: // nil, and so never ready, until Close
				s.mu.Lock()
				s.state.Dropped += uint64(len(s.queue))
				s.head += uint64(len(s.queue))
				s.queue = nil
				s.mu.Unlock()
				return
			}
			backoff = min(2*backoff, s.o.MaxBackoff)
			continue
		}
		// Offer may have dropped records of the batch from the queue while
		// it was in flight: they were delivered all the same, so they are
		// shipped, not dropped. Remove what is left of the batch.
		end := first + uint64(len(batch))
		if s.head > first {
			s.state.Dropped -= min(s.head, end) - first
		}
		if end > s.head {
			s.queue = s.queue[end-s.head:]
			s.head = end
		}
		s.state.Up, s.state.LastError, s.state.LastShipped = true, "", time.Now()
		s.state.Shipped += uint64(len(batch))
		s.mu.Unlock()
		backoff = s.o.MinBackoff
	}
}
