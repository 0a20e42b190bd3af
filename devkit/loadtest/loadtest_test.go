package loadtest

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
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

func TestFloorAnswersTheFortyNineByteEnvelope(t *testing.T) {
	f, err := StartFloor()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := http.Get(f.URL + FloorPath)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	const want = `{"code":"10000","status":200,"message":"success"}`
	if res.StatusCode != http.StatusOK || string(body) != want || len(body) != 49 {
		t.Fatalf("floor answered %d %q (%d bytes), want 200 %q (49 bytes)", res.StatusCode, body, len(body), want)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("content type %q", ct)
	}
}
