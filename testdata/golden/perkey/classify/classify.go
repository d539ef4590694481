// Package classify has a result= function that the golden cases name by
// package name and by import path.
package classify

import (
	"net/http"
	"strconv"
)

// StatusError is a failing answer.
type StatusError struct{ Code int }

func (e *StatusError) Error() string { return "status " + strconv.Itoa(e.Code) }

// Classify counts transport errors, 5xx and 429 as failures.
func Classify(resp *http.Response, err error) error {
	if err != nil {
		return err
	}
	if resp != nil && (resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests) {
		return &StatusError{Code: resp.StatusCode}
	}
	return nil
}
