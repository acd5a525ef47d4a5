package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"unicode/utf8"
)

// checkStrict refuses what encoding/json would quietly accept in a body
// meant for a value of type t: bytes that are not UTF-8 (which it would
// turn into U+FFFD), an object key given twice (it would keep the last),
// and a key that matches a field only when case is ignored ("VALUE" for
// "value"). Two parsers that disagree on a document are how requests get
// smuggled past checks; rotor reads each body one way only. Messages name
// keys, never values.
func checkStrict(b []byte, t reflect.Type) error {
	if !utf8.Valid(b) {
		return errors.New("request body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return checkValue(dec, t, 0)
}

// maxJSONDepth bounds the nesting checkStrict follows.
const maxJSONDepth = 32

// checkValue reads one value from dec and checks it against t (nil: any
// value, only duplicate keys are refused).
func checkValue(dec *json.Decoder, t reflect.Type, depth int) error {
	if depth > maxJSONDepth {
		return errors.New("request body is nested too deeply")
	}
	tok, err := dec.Token()
	if err != nil {
		return errors.New("request body is not valid JSON")
	}
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch tok {
	case json.Delim('{'):
		var fields map[string]reflect.Type
		var elem reflect.Type
		if t != nil {
			switch t.Kind() {
			case reflect.Struct:
				fields = jsonFields(t)
			case reflect.Map:
				elem = t.Elem()
			}
		}
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return errors.New("request body is not valid JSON")
			}
			key, _ := kt.(string)
			if seen[key] {
				return fmt.Errorf("request body: key %q appears twice", clipTo(key, 100))
			}
			seen[key] = true
			next := elem
			if fields != nil {
				ft, ok := fields[key]
				if !ok {
					return fmt.Errorf("request body: unknown field %q (keys are case-sensitive)", clipTo(key, 100))
				}
				next = ft
			}
			if err := checkValue(dec, next, depth+1); err != nil {
				return err
			}
		}
		_, err := dec.Token() // '}'
		return err
	case json.Delim('['):
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for dec.More() {
			if err := checkValue(dec, elem, depth+1); err != nil {
				return err
			}
		}
		_, err := dec.Token() // ']'
		return err
	}
	return nil
}

// jsonFields maps the JSON names of t's exported fields to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	fields := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		fields[name] = f.Type
	}
	return fields
}
