package otlpfake_test

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"strings"
	"testing"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	"google.golang.org/protobuf/proto"

	"github.com/rotor-dev/rotor/internal/otlpfake"
)

// TestReceiver checks the receiver's answers against the OTLP/HTTP
// specification (https://opentelemetry.io/docs/specs/otlp/#otlphttp).
func TestReceiver(t *testing.T) {
	r := otlpfake.Start(t)
	req := &collogspb.ExportLogsServiceRequest{ResourceLogs: []*logspb.ResourceLogs{{
		ScopeLogs: []*logspb.ScopeLogs{{
			Scope: &commonpb.InstrumentationScope{Name: "test"},
			LogRecords: []*logspb.LogRecord{{
				Body:       &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "hello"}},
				Attributes: []*commonpb.KeyValue{{Key: "n", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: 7}}}},
			}},
		}},
	}}}
	pb, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(pb)
	_ = zw.Close()
	base := strings.TrimSuffix(r.URL(), "/v1/logs")
	tests := []struct {
		name, method, path, ctype, encoding string
		body                                []byte
		want                                int
	}{
		{"protobuf", http.MethodPost, "/v1/logs", "application/x-protobuf", "", pb, 200},
		{"gzipped protobuf", http.MethodPost, "/v1/logs", "application/x-protobuf", "gzip", gz.Bytes(), 200},
		{"traces path", http.MethodPost, "/v1/traces", "application/x-protobuf", "", pb, 404},
		{"GET", http.MethodGet, "/v1/logs", "application/x-protobuf", "", nil, 405},
		{"unsupported content type", http.MethodPost, "/v1/logs", "text/plain", "", pb, 415},
		{"not protobuf", http.MethodPost, "/v1/logs", "application/x-protobuf", "", []byte("\xff\xff\xff"), 400},
	}
	for _, tt := range tests {
		hr, err := http.NewRequestWithContext(t.Context(), tt.method, base+tt.path, bytes.NewReader(tt.body))
		if err != nil {
			t.Fatal(err)
		}
		hr.Header.Set("Content-Type", tt.ctype)
		if tt.encoding != "" {
			hr.Header.Set("Content-Encoding", tt.encoding)
		}
		resp, err := http.DefaultClient.Do(hr)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s: status %d, want %d", tt.name, resp.StatusCode, tt.want)
		}
	}
	logs := r.Logs()
	if len(logs) != 2 || logs[0].Scope != "test" || logs[0].Record.GetBody().GetStringValue() != "hello" {
		t.Fatalf("logs = %v; want the two accepted records", logs)
	}
	if n, ok := logs[1].Attr("n"); !ok || n != "7" {
		t.Errorf("attribute n = %q, %v", n, ok)
	}
}
