// Package perkey covers key=, maxkeys=, ignore= and result=: one circuit
// per host, tenant or shard, results classified by a function, and errors
// that count as neither success nor failure.
package perkey

import (
	"context"
	"errors"
	"fmt"
	"net/http"
)

// ErrPoll is what a poll that found nothing returns.
var ErrPoll = errors.New("nothing to poll")

// Classify counts transport errors and 5xx answers as failures.
func Classify(resp *http.Response, err error) error {
	if err != nil {
		return err
	}
	if resp != nil && resp.StatusCode >= 500 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// HostClient gets one circuit per host; a 5xx answer is a failure.
//
//purgatory:circuit name=hosts key=req.URL.Host result=Classify threshold=2
type HostClient interface {
	Do(req *http.Request) (*http.Response, error)

	// Head keys on req.Host, a field of a pointer: nil gives "".
	//
	//purgatory:circuit name=heads key=req.Host
	Head(req *http.Request) (*http.Response, error)

	Close() error
}

// TenantID is a named string type.
type TenantID string

// Shard has a String method: it is a fmt.Stringer.
type Shard struct{ N int }

func (s *Shard) String() string { return fmt.Sprint(s.N) }

// Account has the tenant behind a method and an embedded pointer.
type Account struct {
	*Owner
	Plan string
}

// Owner is embedded in Account by pointer.
type Owner struct{ Tenant TenantID }

// Job carries its account.
type Job struct{ acct *Account }

// Account returns the job's account, or nil.
func (j *Job) Account() *Account { return j.acct }

// Poller polls per tenant; an empty poll and a fetch deadline are neither
// success nor failure.
//
//purgatory:circuit name=poll key=tenant maxkeys=50 ignore=ErrPoll,context.DeadlineExceeded
type Poller interface {
	Poll(ctx context.Context, tenant string) ([]string, error)

	//purgatory:circuit name=poll-id key=id
	PollID(ctx context.Context, id TenantID) error

	//purgatory:circuit name=poll-shard key=shard maxkeys=8
	PollShard(ctx context.Context, shard *Shard) error

	//purgatory:circuit name=poll-job key=job.Account().Tenant
	PollJob(ctx context.Context, job *Job) error

	//purgatory:circuit name=poll-plan key=acct.Plan
	PollPlan(ctx context.Context, acct Account) error

	// PollNames has parameters named like the wrapper's locals.
	//
	//purgatory:circuit name=poll-names key=b.Account().Owner.Tenant
	PollNames(ctx context.Context, b *Job, key, k string) error
}
