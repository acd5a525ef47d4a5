package dynamofake_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/rotor-dev/rotor/internal/dynamofake"
)

func client(s *dynamofake.Server) *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{
		Region: "eu-west-1", BaseEndpoint: aws.String(s.URL()), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
	})
}

func item(pk string, v []byte, ver string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"pk":  &types.AttributeValueMemberS{Value: pk},
		"v":   &types.AttributeValueMemberB{Value: v},
		"ver": &types.AttributeValueMemberN{Value: ver},
	}
}

// TestProtocol checks the behaviours the emulator promises, each as the
// DynamoDB API reference documents it, through the official SDK client.
func TestProtocol(t *testing.T) {
	s := dynamofake.Start(t)
	s.CreateTable("t", "pk")
	c := client(s)
	ctx := t.Context()
	key := map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "a"}}

	// API_GetItem.html: no matching item, no Item in the response.
	out, err := c.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("t"), Key: key, ConsistentRead: aws.Bool(true)})
	if err != nil || out.Item != nil {
		t.Fatalf("GetItem of a missing item = %v, %v; want no item", out.Item, err)
	}
	create := &dynamodb.PutItemInput{TableName: aws.String("t"), Item: item("a", []byte("one\n"), "1"),
		ConditionExpression: aws.String("attribute_not_exists(#pk)"), ExpressionAttributeNames: map[string]string{"#pk": "pk"}}
	if _, err := c.PutItem(ctx, create); err != nil {
		t.Fatalf("conditional create: %v", err)
	}
	// API_PutItem.html: a condition that fails changes nothing and is a
	// ConditionalCheckFailedException.
	var ccf *types.ConditionalCheckFailedException
	if _, err := c.PutItem(ctx, create); !errors.As(err, &ccf) {
		t.Fatalf("second conditional create = %v, want ConditionalCheckFailedException", err)
	}
	swap := func(expected, next string) error {
		_, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("t"), Item: item("a", []byte("v"+next), next),
			ConditionExpression: aws.String("#ver = :ver"), ExpressionAttributeNames: map[string]string{"#ver": "ver"},
			ExpressionAttributeValues: map[string]types.AttributeValue{":ver": &types.AttributeValueMemberN{Value: expected}}})
		return err
	}
	if err := swap("1", "2"); err != nil {
		t.Fatalf("swap from the current version: %v", err)
	}
	if err := swap("1", "3"); !errors.As(err, &ccf) {
		t.Fatalf("swap from a stale version = %v, want ConditionalCheckFailedException", err)
	}
	out, err = c.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("t"), Key: key, ConsistentRead: aws.Bool(true)})
	if err != nil || !bytes.Equal(out.Item["v"].(*types.AttributeValueMemberB).Value, []byte("v2")) {
		t.Fatalf("GetItem after the swaps = %v, %v; want v2", out.Item, err)
	}
	// ServiceQuotas.html: an item is at most 400 KB.
	var ae smithy.APIError
	if _, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("t"), Item: item("big", make([]byte, 401*1024), "1")}); !errors.As(err, &ae) || ae.ErrorCode() != "ValidationException" {
		t.Fatalf("PutItem of a 401 KB item = %v, want a ValidationException", err)
	}
	// An expression the emulator does not evaluate is refused, not guessed.
	if _, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("t"), Item: item("b", nil, "1"),
		ConditionExpression: aws.String("attribute_exists(pk) AND ver > :v")}); err == nil {
		t.Fatal("an unsupported condition expression was accepted")
	}
	// An unknown table is a ResourceNotFoundException.
	var rnf *types.ResourceNotFoundException
	if _, err := c.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("nope"), Key: key}); !errors.As(err, &rnf) {
		t.Fatalf("GetItem on an unknown table = %v, want ResourceNotFoundException", err)
	}
}

// TestCreateTable checks CreateTable and DescribeTable as the API reference
// documents them (API_CreateTable.html, API_DescribeTable.html), through
// the official SDK client.
func TestCreateTable(t *testing.T) {
	s := dynamofake.Start(t)
	s.SetCreatingPolls(1)
	c := client(s)
	ctx := t.Context()
	name := aws.String("audit")
	key := map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "a"}}
	var rnf *types.ResourceNotFoundException
	if _, err := c.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: name}); !errors.As(err, &rnf) {
		t.Fatalf("DescribeTable of a missing table = %v, want ResourceNotFoundException", err)
	}
	create := func(in dynamodb.CreateTableInput) (*dynamodb.CreateTableOutput, error) {
		in.TableName = name
		if in.AttributeDefinitions == nil {
			in.AttributeDefinitions = []types.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS}}
		}
		if in.KeySchema == nil {
			in.KeySchema = []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}}
		}
		return c.CreateTable(ctx, &in)
	}
	refused := []struct {
		name string
		in   dynamodb.CreateTableInput
	}{
		{"provisioned without throughput", dynamodb.CreateTableInput{}},
		{"key attribute not defined", dynamodb.CreateTableInput{BillingMode: types.BillingModePayPerRequest,
			AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: types.ScalarAttributeTypeS}}}},
		{"attribute defined outside the key", dynamodb.CreateTableInput{BillingMode: types.BillingModePayPerRequest,
			AttributeDefinitions: []types.AttributeDefinition{
				{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS},
				{AttributeName: aws.String("v"), AttributeType: types.ScalarAttributeTypeB},
			}}},
	}
	for _, tt := range refused {
		var ae smithy.APIError
		if _, err := create(tt.in); !errors.As(err, &ae) || ae.ErrorCode() != "ValidationException" {
			t.Errorf("CreateTable, %s = %v, want a ValidationException", tt.name, err)
		}
	}
	out, err := create(dynamodb.CreateTableInput{BillingMode: types.BillingModePayPerRequest})
	if err != nil {
		t.Fatal(err)
	}
	if d := out.TableDescription; d.TableStatus != types.TableStatusCreating || d.BillingModeSummary.BillingMode != types.BillingModePayPerRequest ||
		aws.ToString(d.TableArn) != "arn:aws:dynamodb:eu-west-1:000000000000:table/audit" {
		t.Fatalf("CreateTable described %+v; want a CREATING on-demand table in eu-west-1", d)
	}
	var riu *types.ResourceInUseException
	if _, err := create(dynamodb.CreateTableInput{BillingMode: types.BillingModePayPerRequest}); !errors.As(err, &riu) {
		t.Fatalf("a second CreateTable = %v, want ResourceInUseException", err)
	}
	// Items of a table that is not ACTIVE yet cannot be read or written.
	if _, err := c.GetItem(ctx, &dynamodb.GetItemInput{TableName: name, Key: key}); !errors.As(err, &rnf) {
		t.Fatalf("GetItem on a CREATING table = %v, want ResourceNotFoundException", err)
	}
	for _, want := range []types.TableStatus{types.TableStatusCreating, types.TableStatusActive} {
		d, err := c.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: name})
		if err != nil || d.Table.TableStatus != want {
			t.Fatalf("DescribeTable = %v, %v; want %s", d, err, want)
		}
		ks := d.Table.KeySchema
		if len(ks) != 1 || aws.ToString(ks[0].AttributeName) != "pk" || ks[0].KeyType != types.KeyTypeHash {
			t.Fatalf("DescribeTable key schema = %+v", ks)
		}
	}
	if _, err := c.GetItem(ctx, &dynamodb.GetItemInput{TableName: name, Key: key}); err != nil {
		t.Fatalf("GetItem on the ACTIVE table: %v", err)
	}
}
