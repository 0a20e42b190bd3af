package seed

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// topic is a subject the demo blogs write about. Blogs of one topic share
// title and description words, so the similar-blogs list of a demo blog
// shows its neighbours.
type topic struct {
	tag      string   // the blog tag (tags are upper case)
	subjects []string // title subjects
	nouns    []string // words that recur in titles and descriptions
	facts    []string // sentences the text is made of
}

var topics = []topic{
	{
		tag: "GO", subjects: []string{"Go", "Goroutines", "Go generics", "Go modules"},
		nouns: []string{"concurrency", "channels", "interfaces", "profiling", "testing"},
		facts: []string{
			"A goroutine costs a few kilobytes of stack, so a server can afford one per request.",
			"Channels move ownership of data between goroutines; a mutex guards data that stays put.",
			"The race detector finds unsynchronised access at run time, so run the tests with -race.",
			"Interfaces belong to the package that uses them, not to the one that implements them.",
			"pprof shows where the CPU goes; the allocation profile shows who feeds the collector.",
		},
	},
	{
		tag: "KUBERNETES", subjects: []string{"Kubernetes", "Helm charts", "Pod autoscaling", "Readiness probes"},
		nouns: []string{"deployments", "rollouts", "probes", "clusters", "operators"},
		facts: []string{
			"A readiness probe takes a pod out of the Service while it drains; a liveness probe restarts it.",
			"A rolling update with maxUnavailable zero never drops below the desired replica count.",
			"A PodDisruptionBudget keeps node drains from taking every replica at once.",
			"Topology spread constraints put replicas on different nodes and zones.",
			"Requests decide scheduling; limits decide throttling and out-of-memory kills.",
		},
	},
	{
		tag: "DISTRIBUTED", subjects: []string{"Distributed systems", "Consensus", "Message queues", "Circuit breakers"},
		nouns: []string{"latency", "failover", "replication", "timeouts", "retries"},
		facts: []string{
			"Every remote call needs a deadline, or one slow dependency holds every caller.",
			"Retries without a budget turn a brief outage into an overload.",
			"Asynchronous replication trades a window of possible loss for lower write latency.",
			"Idempotent operations are the ones a client may safely send twice.",
			"A circuit breaker fails fast while a dependency is down and probes it now and then.",
		},
	},
	{
		tag: "COOKING", subjects: []string{"Sourdough", "Weeknight curry", "Fresh pasta", "Fermentation"},
		nouns: []string{"bread", "spices", "flour", "recipes", "kitchen"},
		facts: []string{
			"A starter fed at the same hour each day rises on a schedule you can plan around.",
			"Toasting whole spices in dry oil before grinding wakes their aroma.",
			"Pasta dough rests for half an hour so the gluten relaxes and it rolls thin.",
			"Salt slows fermentation; warmth speeds it up.",
			"Weigh flour instead of measuring cups: the same cup can hold a fifth more or less.",
		},
	},
	{
		tag: "TRAVEL", subjects: []string{"Night trains", "Island hopping", "Mountain huts", "City walks"},
		nouns: []string{"journeys", "routes", "stations", "trails", "maps"},
		facts: []string{
			"A sleeper berth turns the travel day into a night and saves a hotel.",
			"Ferries between small islands change timetables with the season; check them the week before.",
			"Mountain huts take reservations months ahead in summer.",
			"Walking a city at dawn shows it before the crowds arrive.",
			"An offline map saves the day when the signal drops in a valley.",
		},
	},
	{
		tag: "PHOTOGRAPHY", subjects: []string{"Street photography", "Film cameras", "Night skies", "Portrait light"},
		nouns: []string{"lenses", "exposure", "composition", "light", "colour"},
		facts: []string{
			"A fixed focal length teaches you to move your feet instead of the zoom ring.",
			"Expose for the highlights on digital; film forgives the shadows instead.",
			"The hour after sunset gives an even blue light that flatters every face.",
			"A twenty-second exposure is about the longest before stars turn into trails on a wide lens.",
			"Leading lines pull the eye into the frame; clutter at the edges pushes it out.",
		},
	},
}

var titleForms = []string{
	"%s: notes on %s",
	"A practical guide to %s and %s",
	"What I learned about %s from %s",
	"%s in practice: %s",
	"Ten lessons of %s and %s",
	"Getting started with %s and %s",
}

var authorNames = []string{
	"Ada Lovelace", "Grace Hopper", "Alan Turing", "Katherine Johnson", "Edsger Dijkstra",
	"Barbara Liskov", "Ken Thompson", "Margaret Hamilton", "Donald Knuth", "Frances Allen",
	"Leslie Lamport", "Radia Perlman",
}

// blogContent is the text of one demo blog.
type blogContent struct {
	Title, Description, Text, Tag string
	Tags                          []string
}

// makeBlog writes demo blog i: deterministic for a given i, so reruns of
// the same size give the same titles (slugs differ per run).
func makeBlog(i int) blogContent {
	r := rand.New(rand.NewPCG(uint64(i), 0x5eed))
	t := topics[i%len(topics)]
	subject := t.subjects[r.IntN(len(t.subjects))]
	noun := t.nouns[r.IntN(len(t.nouns))]
	title := fmt.Sprintf(titleForms[r.IntN(len(titleForms))], subject, noun)
	if strings.HasPrefix(title, "A practical") || strings.HasPrefix(title, "What") ||
		strings.HasPrefix(title, "Ten") || strings.HasPrefix(title, "Getting") {
		title = strings.Replace(title, subject, strings.ToLower(subject[:1])+subject[1:], 1)
	}
	other := t.nouns[r.IntN(len(t.nouns))]
	description := fmt.Sprintf("On %s and %s: %s", noun, other, strings.TrimSuffix(t.facts[r.IntN(len(t.facts))], "."))

	var text strings.Builder
	paragraphs := 3 + r.IntN(4)
	for p := range paragraphs {
		if p > 0 {
			text.WriteString("\n\n")
		}
		sentences := 3 + r.IntN(3)
		for s := range sentences {
			if s > 0 {
				text.WriteByte(' ')
			}
			text.WriteString(t.facts[r.IntN(len(t.facts))])
		}
	}
	tags := []string{t.tag}
	// A second tag now and then links topics, as real tags do.
	if r.IntN(3) == 0 {
		if second := topics[r.IntN(len(topics))].tag; second != t.tag {
			tags = append(tags, second)
		}
	}
	return blogContent{Title: title, Description: description, Text: text.String(), Tag: t.tag, Tags: tags}
}

// blogState is where a demo blog ends up.
type blogState int

const (
	stateDraft blogState = iota
	stateSubmitted
	statePublished
)

// stateOf spreads the blogs as a living platform has them: out of every 20,
// 14 published, 3 submitted for review and 3 drafts.
func stateOf(i int) blogState {
	switch i % 20 {
	case 14, 15, 16:
		return stateSubmitted
	case 17, 18, 19:
		return stateDraft
	}
	return statePublished
}
