package loadtest

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func TestRunCountsRequestsAndErrors(t *testing.T) {
	var n atomic.Int64
	res := Run(context.Background(), Options{Name: "x", Clients: 4, MaxRequests: 100}, func(ctx context.Context, c int) error {
		if n.Add(1)%10 == 0 {
			return errors.New("every tenth fails")
		}
		return nil
	})
	if res.Requests != 100 || res.Errors != 10 {
		t.Fatalf("requests %d errors %d, want 100 and 10", res.Requests, res.Errors)
	}
	if res.P50 > res.P99 || res.P99 > res.Max {
		t.Fatalf("percentiles out of order: %s %s %s", res.P50, res.P99, res.Max)
	}
}

func TestGetAgainstServer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("x-api-key") != "k" {
			w.WriteHeader(401)
			return
		}
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	client := HTTPClient(2)
	ok := Run(context.Background(), Options{Clients: 2, Duration: 100 * time.Millisecond},
		Get(client, srv.URL, http.Header{"X-Api-Key": {"k"}}, 200))
	if ok.Requests == 0 || ok.Errors != 0 || ok.RequestsPerSecond() <= 0 {
		t.Fatalf("%+v", ok)
	}
	bad := Run(context.Background(), Options{Clients: 1, MaxRequests: 5}, Get(client, srv.URL, nil, 200))
	if bad.Errors != 5 {
		t.Fatalf("wrong status not counted as error: %+v", bad)
	}
}
