package api_test

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/rotor-dev/rotor/api"
	"github.com/rotor-dev/rotor/audit"
)

// TestOpenAPISchemasMatchTypes: each schema of the OpenAPI document lists
// exactly the JSON fields of the Go type it describes, so a field added to
// a type (or renamed) cannot be left out of the document.
func TestOpenAPISchemasMatchTypes(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]any `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(api.OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	types := map[string]any{
		"Status": api.Status{}, "Key": api.Key{}, "Operation": api.Operation{}, "Orphan": api.Orphan{},
		"List": api.List{}, "Result": api.Result{}, "Staged": api.Staged{}, "Revoked": api.Revoked{},
		"Audit": api.Audit{}, "AuditRecord": audit.Record{}, "Probe": api.Probe{},
		"ErrorBody": api.ErrorBody{},
	}
	for name, v := range types {
		s, ok := doc.Components.Schemas[name]
		if !ok {
			t.Errorf("no schema %s", name)
			continue
		}
		var got []string
		for p := range s.Properties {
			got = append(got, p)
		}
		slices.Sort(got)
		want := jsonFields(reflect.TypeOf(v))
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("schema %s has %v, type %T has %v", name, got, v, want)
		}
	}
}

// jsonFields lists the JSON names of t's fields, embedded structs
// flattened as encoding/json does.
func jsonFields(t reflect.Type) []string {
	var names []string
	for f := range t.Fields() {
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			names = append(names, jsonFields(f.Type)...)
			continue
		}
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		names = append(names, name)
	}
	return names
}
