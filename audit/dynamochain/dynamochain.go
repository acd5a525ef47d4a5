// Package dynamochain keeps rotor's shared audit chain ([audit.Shared]) in
// an Amazon DynamoDB table, for deployments whose secrets live in AWS
// Secrets Manager.
//
// # Why DynamoDB
//
// The chain needs two things from its backend: values created once
// (create-only writes) and a head moved with compare-and-swap. DynamoDB's
// conditional PutItem gives both in one request, strongly consistent reads
// give writers on any machine the same view, and IAM can grant PutItem
// without DeleteItem or UpdateItem. Secrets Manager itself is a poor fit
// (a secret per batch costs $0.40 a month each), and CloudWatch Logs has
// no compare-and-swap, so its head would need a second service anyway.
//
// # Layout
//
// One table with a string partition key "pk" and on-demand capacity
// (PAY_PER_REQUEST), created once by [Backend.CreateTable] (`rotor audit
// init`) by somebody allowed to create tables. Every key of the chain is
// one item:
//
//	pk  = "<prefix>/<key>"   e.g. rotor/head, rotor/records/15
//	v   = the value (binary)
//	ver = the version (number), 1 when created, +1 on each swap
//
// A Put with [audit.NoVersion] is a PutItem with the condition
// attribute_not_exists(pk); any other is conditioned on ver = <expected>.
// A failed condition is [audit.ErrConflict]. Reads are consistent. A table
// that does not exist, or is not ACTIVE yet, is [ErrNoTable], so that the
// first append of an operation fails, before any change, saying so.
//
// # Cost
//
// An operation's records are one batch: one PutItem of the batch and one
// PutItem of the head, conditional on the head's version as the writer
// last saw it (writers that lose a race read the head and the winner's
// batch and write again). A rotation recorded by a one-shot command is
// about two operations: four write request units and the reads that find
// the chain's end once, a few millionths of a dollar on demand.
package dynamochain

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/rotor-dev/rotor/audit"
)

// Options say where the chain lives.
type Options struct {
	// Client is a DynamoDB client with credentials and region.
	Client *dynamodb.Client
	// Table is the table's name; its partition key must be the string
	// attribute "pk".
	Table string
	// Prefix keeps the chain apart from others in the same table, e.g.
	// the store's name prefix.
	Prefix string
}

// Backend is an [audit.Backend] in a DynamoDB table.
type Backend struct {
	api    itemAPI
	tables tableAPI
	table  string
	prefix string
}

// ErrNoTable means the chain's table does not exist or is not ACTIVE:
// create it with [Backend.CreateTable].
var ErrNoTable = errors.New("the table does not exist or is not active yet")

var _ audit.Backend = (*Backend)(nil)

// itemAPI is the part of the DynamoDB API this package calls.
type itemAPI interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
}

// tableAPI is the part of the DynamoDB API [Backend.CreateTable] calls.
type tableAPI interface {
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, opts ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, opts ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
}

// New returns the backend described by o.
func New(o Options) (*Backend, error) {
	if o.Client == nil {
		return nil, errors.New("dynamodb audit chain: no client")
	}
	if o.Table == "" {
		return nil, errors.New("dynamodb audit chain: no table")
	}
	return &Backend{api: o.Client, tables: o.Client, table: o.Table, prefix: strings.Trim(o.Prefix, "/")}, nil
}

func (b *Backend) pk(key string) string {
	if b.prefix == "" {
		return key
	}
	return b.prefix + "/" + key
}

// Where says where the chain lives, for people.
func (b *Backend) Where() string { return "dynamodb " + b.table + " " + b.pk("") }

// Get implements [audit.Backend].
func (b *Backend) Get(ctx context.Context, key string) ([]byte, audit.Version, error) {
	out, err := b.api.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(b.table),
		Key:            map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: b.pk(key)}},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, audit.NoVersion, fmt.Errorf("dynamodb audit chain: get %s: %w", b.pk(key), b.tableErr(err))
	}
	if out.Item == nil {
		return nil, audit.NoVersion, fmt.Errorf("dynamodb audit chain: %s: %w", b.pk(key), audit.ErrNotExist)
	}
	v, ok := out.Item["v"].(*types.AttributeValueMemberB)
	n, nok := out.Item["ver"].(*types.AttributeValueMemberN)
	if !ok || !nok {
		return nil, audit.NoVersion, fmt.Errorf("dynamodb audit chain: %s has no binary v and number ver: it was not written by rotor", b.pk(key))
	}
	return v.Value, audit.Version(n.Value), nil
}

// Put implements [audit.Backend].
func (b *Backend) Put(ctx context.Context, key string, value []byte, expected audit.Version) (audit.Version, error) {
	next := uint64(1)
	in := &dynamodb.PutItemInput{
		TableName:                aws.String(b.table),
		ExpressionAttributeNames: map[string]string{"#pk": "pk"},
		ConditionExpression:      aws.String("attribute_not_exists(#pk)"),
	}
	if expected != audit.NoVersion {
		cur, err := strconv.ParseUint(string(expected), 10, 64)
		if err != nil || cur == 0 {
			return audit.NoVersion, fmt.Errorf("dynamodb audit chain: %q is not a version", expected)
		}
		next = cur + 1
		in.ExpressionAttributeNames = map[string]string{"#ver": "ver"}
		in.ConditionExpression = aws.String("#ver = :ver")
		in.ExpressionAttributeValues = map[string]types.AttributeValue{":ver": &types.AttributeValueMemberN{Value: string(expected)}}
	}
	in.Item = map[string]types.AttributeValue{
		"pk":  &types.AttributeValueMemberS{Value: b.pk(key)},
		"v":   &types.AttributeValueMemberB{Value: value},
		"ver": &types.AttributeValueMemberN{Value: strconv.FormatUint(next, 10)},
	}
	_, err := b.api.PutItem(ctx, in)
	var ccf *types.ConditionalCheckFailedException
	switch {
	case errors.As(err, &ccf):
		return audit.NoVersion, fmt.Errorf("dynamodb audit chain: %s: %w", b.pk(key), audit.ErrConflict)
	case err != nil:
		return audit.NoVersion, fmt.Errorf("dynamodb audit chain: put %s: %w", b.pk(key), b.tableErr(err))
	}
	return audit.Version(strconv.FormatUint(next, 10)), nil
}

// tableErr turns the error of an item operation on a missing table into
// one that names it and wraps [ErrNoTable].
func (b *Backend) tableErr(err error) error {
	var rnf *types.ResourceNotFoundException
	if errors.As(err, &rnf) {
		return fmt.Errorf("table %s: %w", b.table, ErrNoTable)
	}
	return err
}

// How long CreateTable waits for a new table to become ACTIVE (DynamoDB
// takes seconds), and how often it looks.
const (
	createTimeout = 5 * time.Minute
	pollMin       = time.Second
	pollMax       = 10 * time.Second
)

// CreateTable creates the chain's table, on-demand (PAY_PER_REQUEST) with
// the string partition key "pk", unless it exists, and waits until it is
// ACTIVE. It reports whether it created the table. A table that exists
// with another key schema is an error: the chain cannot live in it. It
// needs dynamodb:DescribeTable and dynamodb:CreateTable on the table, an
// administrator's one-off step; the chain itself needs neither.
func (b *Backend) CreateTable(ctx context.Context) (created bool, err error) {
	out, err := b.tables.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(b.table)})
	var rnf *types.ResourceNotFoundException
	switch {
	case errors.As(err, &rnf):
		_, err = b.tables.CreateTable(ctx, &dynamodb.CreateTableInput{
			TableName:            aws.String(b.table),
			BillingMode:          types.BillingModePayPerRequest,
			AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS}},
			KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}},
		})
		var riu *types.ResourceInUseException
		switch {
		case errors.As(err, &riu): // created meanwhile by somebody else
		case err != nil:
			return false, fmt.Errorf("dynamodb audit chain: create table %s: %w", b.table, err)
		default:
			created = true
		}
	case err != nil:
		return false, fmt.Errorf("dynamodb audit chain: describe table %s: %w", b.table, err)
	default:
		if err := checkSchema(out.Table); err != nil {
			return false, fmt.Errorf("dynamodb audit chain: table %s: %w", b.table, err)
		}
		if out.Table.TableStatus == types.TableStatusActive {
			return false, nil
		}
	}
	w := dynamodb.NewTableExistsWaiter(b.tables, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = pollMin, pollMax
	})
	desc, err := w.WaitForOutput(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(b.table)}, createTimeout)
	if err != nil {
		return created, fmt.Errorf("dynamodb audit chain: wait for table %s to become active: %w", b.table, err)
	}
	if err := checkSchema(desc.Table); err != nil {
		return created, fmt.Errorf("dynamodb audit chain: table %s: %w", b.table, err)
	}
	return created, nil
}

// checkSchema checks that a table's key is the string partition key "pk"
// and nothing else.
func checkSchema(d *types.TableDescription) error {
	if d == nil {
		return errors.New("DescribeTable returned no table")
	}
	ks := d.KeySchema
	ok := len(ks) == 1 && aws.ToString(ks[0].AttributeName) == "pk" && ks[0].KeyType == types.KeyTypeHash
	for _, a := range d.AttributeDefinitions {
		if aws.ToString(a.AttributeName) == "pk" && a.AttributeType != types.ScalarAttributeTypeS {
			ok = false
		}
	}
	if !ok {
		var key []string
		for _, k := range ks {
			key = append(key, aws.ToString(k.AttributeName)+" "+string(k.KeyType))
		}
		return fmt.Errorf("its key is [%s]; the audit chain needs a table whose only key is the string partition key pk (choose another audit.table)", strings.Join(key, ", "))
	}
	return nil
}
