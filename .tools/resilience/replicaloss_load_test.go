package resilience

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"blogplatform/devkit/envelope"
)

// lossSample is one request of a replica-loss run, timed from the run's
// start.
type lossSample struct {
	start, end time.Duration
	status     int    // 0 on a transport error
	failure    string // "" when the request succeeded
	// clear is true for a failure answered by a 5xx JSON envelope with a
	// message: the only kind of failure a client may see.
	clear bool
	write *lossWrite
}

func (s lossSample) latency() time.Duration { return s.end - s.start }

// lossWrite is one blog a write request tried to create: every field is
// unique to it, so the stored state can be compared with what the client was
// told.
type lossWrite struct {
	Title       string   `json:"title"`
	Description string   `json:"description"`
	DraftText   string   `json:"draftText"`
	Slug        string   `json:"slug"`
	ImgURL      string   `json:"imgUrl"`
	Tags        []string `json:"tags"`

	id    string // set when the create answered 200
	acked bool
}

// lossReply is one answer, read in full.
type lossReply struct {
	status int
	body   []byte
}

// message is the envelope's message (the services' and the gateway's error
// bodies both carry one), "" when the body is not such a JSON object.
func (r lossReply) message() string {
	env, err := envelope.Decode(r.body)
	if err != nil {
		return ""
	}
	return env.Message
}

// lossClient sends the suite's requests through the gateway with the API key
// and, when set, the admin's bearer token.
type lossClient struct {
	http   *http.Client
	base   string
	apiKey string
	token  string
}

func (c lossClient) send(ctx context.Context, method, path string, body any) (lossReply, error) {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return lossReply{}, err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return lossReply{}, err
	}
	req.Header.Set("x-api-key", c.apiKey)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.http.Do(req)
	if err != nil {
		return lossReply{}, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return lossReply{}, err
	}
	return lossReply{status: res.StatusCode, body: raw}, nil
}

// lossStats is what one run measured.
type lossStats struct {
	requests, failed int
	p99, max         time.Duration
	maxAt            time.Duration // when the slowest request started
	// recovery is how long after the fault throughput was back for good;
	// recovered is false when it never was before the run ended.
	recovery  time.Duration
	recovered bool
	preRate   float64 // successful requests per second before the fault
	endRate   float64 // and at the end of the run (see recovery)
	// thawLow is, for a frozen replica, the lowest rate of successful
	// requests over any lossWindow after SIGCONT, as a share of preRate
	// (0 when there was no thaw): the thawed replica coming back is a
	// second event, reported apart from the loss itself.
	thawLow float64
	// failureKinds counts failures by status and message, most frequent
	// first.
	failureKinds []lossCount
	// badEnvelopes counts failures that were not a 5xx with a JSON message
	// (transport errors, hangs, 4xx, bodies without a message).
	badEnvelopes int
	// buckets counts the requests completed successfully per lossBucket.
	buckets []int
}

type lossCount struct {
	what string
	n    int
}

// analyse computes the run's figures. Throughput is counted per bucket of
// completion time over [0, duration); requests finishing after the end (the
// ones in flight when it came) still count for latency and failures. For a
// frozen replica (thawAt > 0, the moment of SIGCONT) the recovery from the
// loss is judged over the freeze, [0, thawAt): how soon the remaining
// replica carried the load; the thaw itself is reported as thawLow.
func analyse(samples []lossSample, duration, faultAt, thawAt time.Duration) lossStats {
	st := lossStats{requests: len(samples)}
	lat := make([]time.Duration, 0, len(samples))
	kinds := map[string]int{}
	nBuckets := int(duration / lossBucket)
	buckets := make([]int, nBuckets)
	for _, s := range samples {
		lat = append(lat, s.latency())
		if s.latency() > st.max {
			st.max, st.maxAt = s.latency(), s.start
		}
		if s.failure != "" {
			st.failed++
			kinds[s.failure]++
			if !s.clear {
				st.badEnvelopes++
			}
		}
		if b := int(s.end / lossBucket); b < nBuckets && s.failure == "" {
			buckets[b]++
		}
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		st.p99 = lat[min(len(lat)-1, len(lat)*99/100)]
	}
	for what, n := range kinds {
		st.failureKinds = append(st.failureKinds, lossCount{what, n})
	}
	sort.Slice(st.failureKinds, func(i, j int) bool {
		a, b := st.failureKinds[i], st.failureKinds[j]
		return a.n > b.n || a.n == b.n && a.what < b.what
	})
	st.buckets = buckets
	judged := buckets
	if thawAt > 0 {
		judged = buckets[:min(len(buckets), int(thawAt/lossBucket))]
	}
	st.recovery, st.recovered, st.preRate, st.endRate = recovery(judged, faultAt)
	if thawAt > 0 {
		st.thawLow = lowestShareAfter(buckets, faultAt, thawAt)
	}
	return st
}

// recovery finds the first bucket at or after the fault from which the rate
// of successful requests stays at least lossRecoveredShare of the reference
// rate. The reference is the mean before the fault (leaving out the first
// bucket, while connections open), or the rate the run settles at (the
// better half of its last lossSettleBuckets) when that is lower: on a
// machine shared with other work the rate drifts during a run, and losing
// one replica of two may lower capacity for good; what counts is the dip
// the fault causes, measured against the level the run settles at. A run
// that settles below lossMinSettledShare of the rate before the fault never
// recovered. The rate after the fault is judged over lossWindow buckets
// starting at each bucket (the last lossWindow at the end of the run), so a
// few slow buckets on a busy machine do not count as an outage while a
// stall of a few hundred milliseconds does.
func recovery(buckets []int, faultAt time.Duration) (after time.Duration, ok bool, preRate, endRate float64) {
	faultBucket := int(faultAt / lossBucket)
	if faultBucket < 2 || faultBucket+max(lossWindow, lossSettleBuckets) > len(buckets) {
		return 0, false, 0, 0
	}
	pre := meanCount(buckets[1:faultBucket])
	// The better half of the last stretch: what the remaining replicas can
	// serve, without a stall at the very end lowering the bar for itself.
	last := buckets[len(buckets)-lossSettleBuckets:]
	end := max(meanCount(last[:lossSettleBuckets/2]), meanCount(last[lossSettleBuckets/2:]))
	preRate, endRate = pre/lossBucket.Seconds(), end/lossBucket.Seconds()
	if pre == 0 || end < lossMinSettledShare*pre {
		return 0, false, preRate, endRate
	}
	threshold := lossRecoveredShare * min(pre, end)
	first := -1
	for b := len(buckets) - 1; b >= faultBucket; b-- {
		w := min(b, len(buckets)-lossWindow)
		if meanCount(buckets[w:w+lossWindow]) < threshold {
			break
		}
		first = b
	}
	if first < 0 {
		return 0, false, preRate, endRate
	}
	// A window may straddle the stall's last bucket: start where the
	// buckets themselves are back.
	for first < len(buckets)-1 && float64(buckets[first]) < threshold {
		first++
	}
	return max(0, time.Duration(first)*lossBucket-faultAt), true, preRate, endRate
}

// describeFailure is a failure's kind for the table: the status and the
// envelope's message, or the transport error.
func describeFailure(r lossReply, err error) string {
	if err != nil {
		msg := err.Error()
		// The URL differs per request; keep the cause only.
		if i := strings.LastIndex(msg, ": "); i >= 0 {
			msg = msg[i+2:]
		}
		return "transport error: " + msg
	}
	if m := r.message(); m != "" {
		return fmt.Sprintf("%d %s", r.status, m)
	}
	return fmt.Sprintf("%d %s", r.status, truncateLoss(string(r.body), 80))
}

func truncateLoss(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// lowestShareAfter is the lowest mean over lossWindow buckets from `from` to
// the end, as a share of the mean before faultAt (leaving out the first
// bucket, while connections open).
func lowestShareAfter(buckets []int, faultAt, from time.Duration) float64 {
	faultBucket, first := int(faultAt/lossBucket), int(from/lossBucket)
	if faultBucket < 2 || first+lossWindow > len(buckets) {
		return 0
	}
	pre := meanCount(buckets[1:faultBucket])
	if pre == 0 {
		return 0
	}
	low := -1.0
	for b := first; b+lossWindow <= len(buckets); b++ {
		if m := meanCount(buckets[b : b+lossWindow]); low < 0 || m < low {
			low = m
		}
	}
	return low / pre
}

// meanCount is the mean of a run of bucket counts.
func meanCount(bs []int) float64 {
	n := 0
	for _, c := range bs {
		n += c
	}
	return float64(n) / float64(len(bs))
}
