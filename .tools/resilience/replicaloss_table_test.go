package resilience

import (
	"fmt"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// lossTable renders the rows as Markdown, for the test log and the README.
func lossTable(rows []lossRow, took time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Replica loss under load: %d clients through the local gateway for %s each, "+
		"the signal %s in, SIGCONT %s after SIGSTOP; 2 replicas of each service; "+
		"race detector %s, GOMAXPROCS %d; %d runs in %s.\n\n",
		lossClients, lossDuration, lossFaultAt, lossFreeze, onOff(raceEnabled), runtime.GOMAXPROCS(0),
		len(rows), took.Round(time.Second))
	b.WriteString("| Replica | Signal | Request | Requests | Req/s before | Req/s at the end | Failed | p99 | Max | Throughput back | After SIGCONT | Failures | Writes read back |\n")
	b.WriteString("|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|---|---|\n")
	for _, r := range rows {
		st := r.stats
		failures := describeCounts(st.failureKinds, 2)
		if failures == "" {
			failures = "–"
		}
		if len(r.problems) > 0 {
			failures += " (suite: " + strings.Join(r.problems, "; ") + ")"
		}
		if r.capped {
			failures += " (request cap reached)"
		}
		thaw := "–"
		if r.signal == syscall.SIGSTOP {
			thaw = fmt.Sprintf("%.0f %%", st.thawLow*100)
		}
		request := r.kind.name
		if r.rerun {
			request += " (again)"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %d | %.0f | %.0f | %d | %s | %s | %s | %s | %s | %s |\n",
			r.victim(), signalName(r.signal), request, st.requests, st.preRate, st.endRate, st.failed,
			fmtLatency(st.p99), fmtLatency(st.max), fmtRecovery(st), thaw, markdownCell(failures), markdownCell(describeWrites(r.writes)))
	}
	fmt.Fprintf(&b, "\n\"Req/s\": successful requests per second before the signal, and at the end of the run "+
		"(the better half of its last %s). "+
		"\"Throughput back\": time from the signal until the rate of successful requests, over every %s window from then "+
		"to the end of the run, stays at least %.0f %% of the lower of those two rates (n/a: never, or the run ended "+
		"below %.0f %% of the rate before the signal); the lower one, because on a shared machine the rate drifts and one "+
		"replica may serve less than two. For SIGSTOP it is judged over the freeze (until SIGCONT): how soon the other "+
		"replica carried the load. \"After SIGCONT\": the lowest rate over any %s window after the thawed replica came "+
		"back, as a share of the rate before the signal. \"(again)\": a scenario that missed a target runs once more and "+
		"that second run is the one asserted.\n",
		lossSettleBuckets*lossBucket, lossWindow*lossBucket, lossRecoveredShare*100, lossMinSettledShare*100, lossWindow*lossBucket)
	b.WriteString(
		"\"Writes read back\": each write creates a blog with unique fields; afterwards the store is read: every blog " +
			"acknowledged with 200 must be there whole under the _id the client got, and each failed write is either absent " +
			"or counted as applied despite failure.\n")
	return b.String()
}

func describeWrites(w *lossWriteCheck) string {
	if w == nil {
		return "–"
	}
	s := fmt.Sprintf("%d of %d acknowledged as written", w.asWritten, w.acked)
	if len(w.lost) > 0 {
		s += fmt.Sprintf(", %d lost or different", len(w.lost))
	}
	if w.failed > 0 {
		s += fmt.Sprintf("; of %d failed: %d absent, %d applied despite failure", w.failed, w.absent, w.appliedAnyway)
	}
	return s
}

func markdownCell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}

func fmtLatency(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

func fmtRecovery(st lossStats) string {
	if !st.recovered {
		return "n/a"
	}
	return fmt.Sprintf("%.1f s", st.recovery.Seconds())
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
