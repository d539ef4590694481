// Package result covers result= naming a function of another package, by
// package name and by import path, and results that carry more than an
// *http.Response.
package result

import (
	"context"
	"net/http"

	"github.com/purgatory-go/purgatory/testdata/golden/perkey/classify"
)

// StatusError is what classify.Classify returns for a failing answer.
type StatusError = classify.StatusError

// API names the classifier by package name; Fetch by import path.
//
//purgatory:circuit name=api result=classify.Classify
type API interface {
	RoundTrip(req *http.Request) (*http.Response, error)

	//purgatory:circuit name=api-fetch result=github.com/purgatory-go/purgatory/testdata/golden/perkey/classify.Classify
	Fetch(ctx context.Context, url string) (*http.Response, error)

	//purgatory:circuit name=api-count result=Counted
	Count(ctx context.Context) (int, *http.Response, error)
}

// Counted classifies Count's results: a result function may take any of
// the results, and interfaces where they are assignable.
var Counted = func(n int, resp any, err error) error {
	if err == nil && n < 0 {
		return context.DeadlineExceeded
	}
	return err
}
