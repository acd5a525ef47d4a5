package main

import (
	"errors"
	"strconv"
	"testing"
)

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }
