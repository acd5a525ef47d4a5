// Package dynamofake is an in-memory Amazon DynamoDB for tests, limited to
// what the shared audit chain calls (package audit/dynamochain). It speaks
// the service's wire protocol so that the real aws-sdk-go-v2 DynamoDB
// client runs unchanged against it.
//
// # Protocol
//
// Every request is a POST to / with X-Amz-Target:
// DynamoDB_20120810.<Operation> and Content-Type:
// application/x-amz-json-1.0 (AWS JSON 1.0), signed with Signature
// Version 4 for service dynamodb (the signature is not verified). Errors
// are HTTP 400 responses with a body {"__type":
// "com.amazonaws.dynamodb.v20120810#<Error>", "message": ...}, which the
// SDK turns into its typed errors.
//
// # Behaviour
//
// As the DynamoDB API reference documents them
// (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/):
//
//   - GetItem (API_GetItem.html) returns the item with the given primary
//     key, or a response without Item when there is none;
//   - PutItem (API_PutItem.html) replaces the whole item; with a
//     ConditionExpression that evaluates to false it changes nothing and
//     fails with ConditionalCheckFailedException;
//   - condition expressions (Expressions.ConditionExpressions.html): this
//     emulator evaluates attribute_not_exists(path) and path = :value, with
//     #name placeholders from ExpressionAttributeNames and :value ones from
//     ExpressionAttributeValues, and refuses every other expression with a
//     ValidationException rather than guess;
//   - an item larger than 400 KB is refused with a ValidationException
//     (ServiceQuotas.html, "Item size"); sizes are counted as attribute
//     names plus values, as the quota page describes;
//   - an unknown table, or one that is not ACTIVE yet, is a
//     ResourceNotFoundException (API_GetItem.html, "Errors");
//   - CreateTable (API_CreateTable.html) takes AttributeDefinitions,
//     KeySchema and BillingMode (default PROVISIONED, which needs
//     ProvisionedThroughput); every attribute defined must be in the key
//     schema and every key attribute defined, and a table that exists is a
//     ResourceInUseException; the response's TableDescription has
//     TableStatus CREATING;
//   - DescribeTable (API_DescribeTable.html) returns the TableDescription
//     with its TableStatus, CREATING until the table is ACTIVE (see
//     [Server.SetCreatingPolls]).
//
// Tables have one partition key of type string: a sort key or another key
// type is refused with a ValidationException naming this emulator; there
// are no indexes, streams or capacity limits. [Server.CreateTable] adds an
// ACTIVE table directly, for tests that are not about creating it.
// Operations on one table are serialised, which DynamoDB's conditional
// writes guarantee per item.
package dynamofake

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Server is the emulator.
type Server struct {
	mu     sync.Mutex
	tables map[string]*table
	// Down, when set, makes every request fail with a 500 (tests of an
	// unreachable service).
	down bool
	url  string
	// creatingPolls is how many DescribeTable responses say CREATING for
	// a table created over the wire.
	creatingPolls int
}

type table struct {
	key   string
	items map[string]map[string]attr
	// desc is the table as DescribeTable describes it; nil for tables
	// added by Server.CreateTable, which are described from key.
	desc *tableDescription
	// creating counts the DescribeTable responses still to say CREATING;
	// until then, item operations fail as on a table that does not exist.
	creating int
}

// tableDescription is the TableDescription of the API reference
// (API_TableDescription.html), limited to what this emulator keeps.
type tableDescription struct {
	TableName            string
	TableArn             string
	TableStatus          string
	CreationDateTime     float64 // seconds since the epoch
	KeySchema            []keySchemaElement
	AttributeDefinitions []attributeDefinition
	BillingModeSummary   *billingModeSummary `json:",omitempty"`
	ItemCount            int
	TableSizeBytes       int
}

type keySchemaElement struct{ AttributeName, KeyType string }

type attributeDefinition struct{ AttributeName, AttributeType string }

type billingModeSummary struct{ BillingMode string }

// attr is one attribute value as the wire carries it: exactly one of S, N
// or B.
type attr struct {
	S *string `json:"S,omitempty"`
	N *string `json:"N,omitempty"`
	B *string `json:"B,omitempty"` // base64
}

func (a attr) equal(b attr) bool {
	eq := func(x, y *string) bool { return x == nil && y == nil || x != nil && y != nil && *x == *y }
	return eq(a.S, b.S) && eq(a.N, b.N) && eq(a.B, b.B)
}

func (a attr) size() int {
	switch {
	case a.S != nil:
		return len(*a.S)
	case a.N != nil:
		return len(*a.N)
	case a.B != nil:
		n, _ := base64.StdEncoding.DecodeString(*a.B)
		return len(n)
	}
	return 0
}

// TB is the part of testing.TB that [Start] uses. Taking it instead of
// testing.TB keeps the testing package out of programs that run the
// emulator with [New] (rotor-bench).
type TB interface {
	Cleanup(func())
}

// Start runs the emulator on loopback for tb and stops it in Cleanup.
func Start(tb TB) *Server {
	s, stop := New()
	tb.Cleanup(stop)
	return s
}

// New runs the emulator on loopback, for a TestMain; stop stops it.
func New() (s *Server, stop func()) {
	s = &Server{tables: map[string]*table{}}
	hs := httptest.NewServer(s)
	s.url = hs.URL
	return s, hs.Close
}

// URL is the endpoint to give the SDK client.
func (s *Server) URL() string { return s.url }

// CreateTable adds a table whose partition key is the string attribute
// key.
func (s *Server) CreateTable(name, key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tables[name] = &table{key: key, items: map[string]map[string]attr{}}
}

// SetCreatingPolls makes a table created by CreateTable requests stay
// CREATING for the next n DescribeTable requests on it (default 0: it is
// ACTIVE as soon as the CreateTable response, which says CREATING, is
// sent), so that tests see a client wait for it.
func (s *Server) SetCreatingPolls(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.creatingPolls = n
}

// SetDown makes the service unreachable (500 to every request) or
// reachable again.
func (s *Server) SetDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

type apiError struct{ typ, msg string }

const (
	errConditional = "ConditionalCheckFailedException"
	errNotFound    = "ResourceNotFoundException"
	errValidation  = "ValidationException"
	errUnknownOp   = "UnknownOperationException"
	errInUse       = "ResourceInUseException"
	maxItemSize    = 400 * 1024
)

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	down := s.down
	s.mu.Unlock()
	if down {
		http.Error(w, "service unavailable", http.StatusInternalServerError)
		return
	}
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "DynamoDB_20120810.")
	if r.Method != http.MethodPost || !ok || !strings.Contains(r.Header.Get("Authorization"), "/dynamodb/aws4_request") {
		writeErr(w, &apiError{errUnknownOp, "not a signed DynamoDB JSON 1.0 request"})
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeErr(w, &apiError{errValidation, err.Error()})
		return
	}
	var out any
	var aerr *apiError
	switch op {
	case "GetItem":
		out, aerr = s.getItem(body)
	case "PutItem":
		out, aerr = s.putItem(body)
	case "CreateTable":
		out, aerr = s.createTable(body, region(r.Header.Get("Authorization")))
	case "DescribeTable":
		out, aerr = s.describeTable(body)
	default:
		aerr = &apiError{errUnknownOp, "unsupported operation " + op}
	}
	if aerr != nil {
		writeErr(w, aerr)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	_ = json.NewEncoder(w).Encode(out)
}

func writeErr(w http.ResponseWriter, e *apiError) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": "com.amazonaws.dynamodb.v20120810#" + e.typ, "message": e.msg})
}

// lookup returns the ACTIVE table name, for item operations.
func (s *Server) lookup(name string) (*table, *apiError) {
	t := s.tables[name]
	if t == nil || t.creating > 0 {
		return nil, &apiError{errNotFound, "Requested resource not found: Table: " + name + " not found"}
	}
	return t, nil
}

// region is the region of a Signature Version 4 Authorization header's
// credential scope (Credential=AKID/date/region/service/aws4_request).
func region(authorization string) string {
	_, cred, ok := strings.Cut(authorization, "Credential=")
	if !ok {
		return ""
	}
	if parts := strings.Split(cred, "/"); len(parts) >= 3 {
		return parts[2]
	}
	return ""
}

func (s *Server) createTable(body []byte, region string) (any, *apiError) {
	var req struct {
		TableName             string
		AttributeDefinitions  []attributeDefinition
		KeySchema             []keySchemaElement
		BillingMode           string
		ProvisionedThroughput *struct{ ReadCapacityUnits, WriteCapacityUnits int64 }
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, &apiError{errValidation, err.Error()}
	}
	invalid := func(msg string) (any, *apiError) {
		return nil, &apiError{errValidation, "One or more parameter values were invalid: " + msg}
	}
	if !tableName.MatchString(req.TableName) {
		return invalid("TableName must be 3 to 255 characters of a-z, A-Z, 0-9, '_', '-' and '.'")
	}
	switch req.BillingMode {
	case "PAY_PER_REQUEST":
	case "", "PROVISIONED":
		req.BillingMode = "PROVISIONED"
		if p := req.ProvisionedThroughput; p == nil || p.ReadCapacityUnits < 1 || p.WriteCapacityUnits < 1 {
			return invalid("ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is PROVISIONED")
		}
	default:
		return invalid("BillingMode must be PROVISIONED or PAY_PER_REQUEST")
	}
	if len(req.KeySchema) != len(req.AttributeDefinitions) {
		return invalid("Number of attributes in KeySchema does not exactly match number of attributes defined in AttributeDefinitions")
	}
	if len(req.KeySchema) != 1 || req.KeySchema[0].KeyType != "HASH" {
		return nil, &apiError{errValidation, "this emulator supports tables with one partition (HASH) key and no sort key"}
	}
	key := req.KeySchema[0].AttributeName
	if d := req.AttributeDefinitions[0]; d.AttributeName != key {
		return invalid("Some index key attributes are not defined in AttributeDefinitions. Keys: [" + key + "], AttributeDefinitions: [" + d.AttributeName + "]")
	} else if d.AttributeType != "S" {
		return nil, &apiError{errValidation, "this emulator supports partition keys of type S only"}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tables[req.TableName] != nil {
		return nil, &apiError{errInUse, "Table already exists: " + req.TableName}
	}
	desc := &tableDescription{
		TableName:            req.TableName,
		TableArn:             "arn:aws:dynamodb:" + region + ":000000000000:table/" + req.TableName,
		CreationDateTime:     float64(time.Now().Unix()),
		KeySchema:            req.KeySchema,
		AttributeDefinitions: req.AttributeDefinitions,
		BillingModeSummary:   &billingModeSummary{BillingMode: req.BillingMode},
	}
	s.tables[req.TableName] = &table{key: key, items: map[string]map[string]attr{}, desc: desc, creating: s.creatingPolls}
	out := *desc
	out.TableStatus = "CREATING"
	return map[string]any{"TableDescription": out}, nil
}

var tableName = regexp.MustCompile(`^[A-Za-z0-9_.-]{3,255}$`)

func (s *Server) describeTable(body []byte) (any, *apiError) {
	var req struct{ TableName string }
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, &apiError{errValidation, err.Error()}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tables[req.TableName]
	if t == nil {
		return nil, &apiError{errNotFound, "Requested resource not found: Table: " + req.TableName + " not found"}
	}
	var out tableDescription
	if t.desc != nil {
		out = *t.desc
	} else {
		out = tableDescription{
			TableName:            req.TableName,
			KeySchema:            []keySchemaElement{{AttributeName: t.key, KeyType: "HASH"}},
			AttributeDefinitions: []attributeDefinition{{AttributeName: t.key, AttributeType: "S"}},
		}
	}
	out.TableStatus = "ACTIVE"
	if t.creating > 0 {
		out.TableStatus = "CREATING"
		t.creating--
	}
	out.ItemCount = len(t.items)
	return map[string]any{"Table": out}, nil
}

func (t *table) keyOf(item map[string]attr) (string, *apiError) {
	k, ok := item[t.key]
	if !ok || k.S == nil || len(item) == 0 {
		return "", &apiError{errValidation, "One or more parameter values were invalid: Missing the key " + t.key + " in the item"}
	}
	return *k.S, nil
}

func (s *Server) getItem(body []byte) (any, *apiError) {
	var req struct {
		TableName      string
		Key            map[string]attr
		ConsistentRead bool
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, &apiError{errValidation, err.Error()}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, aerr := s.lookup(req.TableName)
	if aerr != nil {
		return nil, aerr
	}
	k, aerr := t.keyOf(req.Key)
	if aerr != nil {
		return nil, aerr
	}
	if item, ok := t.items[k]; ok {
		return map[string]any{"Item": item}, nil
	}
	return map[string]any{}, nil
}

var (
	notExists = regexp.MustCompile(`^\s*attribute_not_exists\s*\(\s*(#?[A-Za-z0-9_]+)\s*\)\s*$`)
	equals    = regexp.MustCompile(`^\s*(#?[A-Za-z0-9_]+)\s*=\s*(:[A-Za-z0-9_]+)\s*$`)
)

func (s *Server) putItem(body []byte) (any, *apiError) {
	var req struct {
		TableName                 string
		Item                      map[string]attr
		ConditionExpression       string
		ExpressionAttributeNames  map[string]string
		ExpressionAttributeValues map[string]attr
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, &apiError{errValidation, err.Error()}
	}
	size := 0
	for name, a := range req.Item {
		size += len(name) + a.size()
	}
	if size > maxItemSize {
		return nil, &apiError{errValidation, "Item size has exceeded the maximum allowed size"}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, aerr := s.lookup(req.TableName)
	if aerr != nil {
		return nil, aerr
	}
	k, aerr := t.keyOf(req.Item)
	if aerr != nil {
		return nil, aerr
	}
	if c := req.ConditionExpression; c != "" {
		ok, aerr := evaluate(c, t.items[k], req.ExpressionAttributeNames, req.ExpressionAttributeValues)
		if aerr != nil {
			return nil, aerr
		}
		if !ok {
			return nil, &apiError{errConditional, "The conditional request failed"}
		}
	}
	t.items[k] = req.Item
	return map[string]any{}, nil
}

// evaluate evaluates the condition expressions this emulator supports
// against item (nil when there is none).
func evaluate(expr string, item map[string]attr, names map[string]string, values map[string]attr) (bool, *apiError) {
	name := func(p string) (string, *apiError) {
		if !strings.HasPrefix(p, "#") {
			return p, nil
		}
		n, ok := names[p]
		if !ok {
			return "", &apiError{errValidation, "An expression attribute name used in the document path is not defined; attribute name: " + p}
		}
		return n, nil
	}
	if m := notExists.FindStringSubmatch(expr); m != nil {
		n, aerr := name(m[1])
		if aerr != nil {
			return false, aerr
		}
		_, exists := item[n]
		return !exists, nil
	}
	if m := equals.FindStringSubmatch(expr); m != nil {
		n, aerr := name(m[1])
		if aerr != nil {
			return false, aerr
		}
		v, ok := values[m[2]]
		if !ok {
			return false, &apiError{errValidation, "An expression attribute value used in expression is not defined; attribute value: " + m[2]}
		}
		a, exists := item[n]
		return exists && a.equal(v), nil
	}
	return false, &apiError{errValidation, fmt.Sprintf("this emulator does not evaluate the condition expression %q", expr)}
}
