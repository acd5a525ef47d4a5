// Package otlpfake is a local OTLP/HTTP logs receiver for tests: what an
// OpenTelemetry collector does with the requests of rotor's OTLP audit sink
// (package audit/sinks), decoded with the official protobuf types of
// go.opentelemetry.io/proto/otlp.
//
// # Protocol
//
// As the OTLP specification describes OTLP/HTTP
// (https://opentelemetry.io/docs/specs/otlp/#otlphttp):
//
//   - requests are POSTs to /v1/logs ("OTLP/HTTP Request": the default
//     URL path for logs) whose body is an ExportLogsServiceRequest in
//     binary protobuf (Content-Type: application/x-protobuf), gzipped when
//     Content-Encoding: gzip; other paths are 404, other methods 405, and
//     other content types 415 ("Binary Protobuf Encoding");
//   - a request that does not decode is 400 Bad Request with a
//     google.rpc.Status body ("Failures", "Bad Data");
//   - success is 200 OK with an ExportLogsServiceResponse body in the
//     request's content type ("Success");
//   - [Receiver.Fail] makes it answer with an HTTP status of the test's
//     choice and a google.rpc.Status body, as a receiver that is
//     overloaded (503, "Retryable Response Codes") or refuses data does;
//   - [Receiver.SetDown] closes its listener, as a receiver that is down
//     (connection refused), and opens it again on the same address.
package otlpfake

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"
)

// Log is one log record the receiver took, with the resource and scope it
// came with.
type Log struct {
	// Resource holds the resource's attributes as strings.
	Resource map[string]string
	// Scope is the instrumentation scope's name.
	Scope string
	// Record is the decoded record.
	Record *logspb.LogRecord
}

// Attr returns the string form of the record's attribute key, and whether
// it has one.
func (l Log) Attr(key string) (string, bool) {
	for _, kv := range l.Record.GetAttributes() {
		if kv.GetKey() == key {
			return valueString(kv.GetValue()), true
		}
	}
	return "", false
}

func valueString(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_IntValue:
		return fmt.Sprint(x.IntValue)
	case *commonpb.AnyValue_BoolValue:
		return fmt.Sprint(x.BoolValue)
	case *commonpb.AnyValue_DoubleValue:
		return fmt.Sprint(x.DoubleValue)
	case *commonpb.AnyValue_BytesValue:
		return string(x.BytesValue)
	}
	return v.String()
}

// Receiver is the receiver.
type Receiver struct {
	addr string
	srv  *http.Server

	mu       sync.Mutex
	ln       net.Listener // nil while down
	logs     []Log
	raw      bytes.Buffer // every request body, decompressed
	requests int
	fail     int // HTTP status to answer with; 0: succeed
	changed  chan struct{}
}

// Start runs a receiver on loopback for tb and stops it in Cleanup.
func Start(tb testing.TB) *Receiver {
	tb.Helper()
	r, err := New()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(r.Close)
	return r
}

// New runs a receiver on loopback; Close stops it.
func New() (*Receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &Receiver{addr: ln.Addr().String(), changed: make(chan struct{})}
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serve)}
	r.listen(ln)
	return r, nil
}

func (r *Receiver) listen(ln net.Listener) {
	r.ln = ln
	go func() { _ = r.srv.Serve(ln) }()
}

// URL is the logs endpoint: http://127.0.0.1:PORT/v1/logs.
func (r *Receiver) URL() string { return "http://" + r.addr + "/v1/logs" }

// SetDown closes the listener, so that connections are refused, or opens
// it again on the same address.
func (r *Receiver) SetDown(down bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case down && r.ln != nil:
		err := r.ln.Close()
		r.ln = nil
		// Connections kept alive by clients would still reach the
		// handler; a receiver that is down has none.
		r.srv.SetKeepAlivesEnabled(false)
		return err
	case !down && r.ln == nil:
		ln, err := net.Listen("tcp", r.addr)
		if err != nil {
			return fmt.Errorf("otlpfake: listen again on %s: %w", r.addr, err)
		}
		r.srv.SetKeepAlivesEnabled(true)
		r.listen(ln)
	}
	return nil
}

// Fail makes every request answered with the HTTP status code (and a
// google.rpc.Status body) from now on; 0 makes them succeed again.
func (r *Receiver) Fail(code int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fail = code
}

// Close stops the receiver.
func (r *Receiver) Close() {
	_ = r.srv.Close()
}

// Logs returns the records taken so far, in order.
func (r *Receiver) Logs() []Log {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Log(nil), r.logs...)
}

// Raw returns every request body received so far, decompressed and
// concatenated, for tests that scan what reached the receiver.
func (r *Receiver) Raw() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.raw.Bytes())
}

// Requests counts the requests answered, successful or not.
func (r *Receiver) Requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests
}

// Wait returns once the receiver holds at least n records or ctx ends.
func (r *Receiver) Wait(ctx context.Context, n int) error {
	for {
		r.mu.Lock()
		have, changed := len(r.logs), r.changed
		r.mu.Unlock()
		if have >= n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("otlpfake: %d of %d records received: %w", have, n, ctx.Err())
		}
	}
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.requests++
	fail := r.fail
	r.mu.Unlock()
	switch {
	case req.URL.Path != "/v1/logs":
		http.NotFound(w, req)
		return
	case req.Method != http.MethodPost:
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	case req.Header.Get("Content-Type") != "application/x-protobuf":
		http.Error(w, "unsupported content type", http.StatusUnsupportedMediaType)
		return
	case fail != 0:
		writeStatus(w, fail, "otlpfake: told to fail")
		return
	}
	var body io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			writeStatus(w, http.StatusBadRequest, err.Error())
			return
		}
		body = zr
	}
	data, err := io.ReadAll(body)
	if err != nil {
		writeStatus(w, http.StatusBadRequest, err.Error())
		return
	}
	var in collogspb.ExportLogsServiceRequest
	if err := proto.Unmarshal(data, &in); err != nil {
		writeStatus(w, http.StatusBadRequest, "decode ExportLogsServiceRequest: "+err.Error())
		return
	}
	var got []Log
	for _, rl := range in.GetResourceLogs() {
		res := map[string]string{}
		for _, kv := range rl.GetResource().GetAttributes() {
			res[kv.GetKey()] = valueString(kv.GetValue())
		}
		for _, sl := range rl.GetScopeLogs() {
			for _, lr := range sl.GetLogRecords() {
				got = append(got, Log{Resource: res, Scope: sl.GetScope().GetName(), Record: lr})
			}
		}
	}
	if len(got) == 0 {
		writeStatus(w, http.StatusBadRequest, "no log records in the request")
		return
	}
	out, err := proto.Marshal(&collogspb.ExportLogsServiceResponse{})
	if err != nil {
		writeStatus(w, http.StatusInternalServerError, err.Error())
		return
	}
	r.mu.Lock()
	r.logs = append(r.logs, got...)
	r.raw.Write(data)
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// writeStatus answers with the HTTP status code and a google.rpc.Status
// body, as the specification's "Failures" section says, its code the gRPC
// code that goes with the HTTP one.
func writeStatus(w http.ResponseWriter, code int, msg string) {
	grpcCode := map[int]int32{
		http.StatusBadRequest:         3,  // INVALID_ARGUMENT
		http.StatusTooManyRequests:    8,  // RESOURCE_EXHAUSTED
		http.StatusBadGateway:         14, // UNAVAILABLE
		http.StatusServiceUnavailable: 14,
		http.StatusGatewayTimeout:     4, // DEADLINE_EXCEEDED
	}[code]
	if grpcCode == 0 {
		grpcCode = 2 // UNKNOWN
	}
	b, err := proto.Marshal(&statuspb.Status{Code: grpcCode, Message: msg})
	if err != nil {
		b = nil
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}
