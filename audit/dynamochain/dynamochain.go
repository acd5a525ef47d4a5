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
// One table with a string partition key "pk" (on-demand capacity is
// enough). Every key of the chain is one item:
//
//	pk  = "<prefix>/<key>"   e.g. rotor/head, rotor/records/15
//	v   = the value (binary)
//	ver = the version (number), 1 when created, +1 on each swap
//
// A Put with [audit.NoVersion] is a PutItem with the condition
// attribute_not_exists(pk); any other is conditioned on ver = <expected>.
// A failed condition is [audit.ErrConflict]. Reads are consistent.
//
// # Cost
//
// An operation's records are one batch: one PutItem of the batch, one
// GetItem and one PutItem of the head (writers that lose a race read the
// winner's batch and write again). A rotation recorded by a one-shot
// command is about two operations: four write and two read request units,
// a few millionths of a dollar on demand.
package dynamochain

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

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
	table  string
	prefix string
}

var _ audit.Backend = (*Backend)(nil)

// itemAPI is the part of the DynamoDB API this package calls.
type itemAPI interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
}

// New returns the backend described by o.
func New(o Options) (*Backend, error) {
	if o.Client == nil {
		return nil, errors.New("dynamodb audit chain: no client")
	}
	if o.Table == "" {
		return nil, errors.New("dynamodb audit chain: no table")
	}
	return &Backend{api: o.Client, table: o.Table, prefix: strings.Trim(o.Prefix, "/")}, nil
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
		return nil, audit.NoVersion, fmt.Errorf("dynamodb audit chain: get %s: %w", b.pk(key), err)
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
		return audit.NoVersion, fmt.Errorf("dynamodb audit chain: put %s: %w", b.pk(key), err)
	}
	return audit.Version(strconv.FormatUint(next, 10)), nil
}
