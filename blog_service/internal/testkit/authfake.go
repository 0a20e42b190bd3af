// Package testkit is what blog_service's tests share: a fake auth_service on
// the real NATS server, built from the wire fixtures in chassis/authwire
// (the copy auth_service is tested against too), and an App harness on the
// embedded infrastructure of devkit/testinfra.
package testkit

import (
	"encoding/json"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"blogplatform/chassis/authwire"
	"blogplatform/chassis/natsx"
)

// Authorization headers the fake auth knows.
const (
	AuthorToken      = "Bearer author-token"
	OtherAuthorToken = "Bearer other-author-token"
	EditorToken      = "Bearer editor-token"
	LearnerToken     = "Bearer learner-token"
	GarbageToken     = "Bearer garbage"
)

// Users of the fake auth. Author and Editor come from the shared fixtures.
var (
	Author      = fixtureUser("authentication_reply_with_picture") // AUTHOR
	Editor      = fixtureUser("authentication_reply")              // EDITOR
	OtherAuthor = authwire.User{ID: "66a0c6b2f1e4d3c2b1a09f90", Name: "Otto Other", Email: "otto@example.com"}
	Learner     = authwire.User{ID: "66a0c6b2f1e4d3c2b1a09f91", Name: "Lena Learner", Email: "lena@example.com"}
)

func fixtureUser(name string) authwire.User {
	var msg struct {
		Data authwire.User `json:"data"`
	}
	if err := json.Unmarshal(authwire.Fixture(name), &msg); err != nil {
		panic("testkit: fixture " + name + ": " + err.Error())
	}
	return msg.Data
}

// Behaviour of the fake auth.
type Behaviour int

const (
	// Answers like auth_service (the fixtures' shapes and messages).
	Normal Behaviour = iota
	// Replies bytes that are not JSON.
	NotJSON
	// Replies {"error":"garbage without status"}.
	ErrorWithoutStatus
	// Answers like Normal, but only after Delay.
	Slow
)

// FakeAuth serves auth.authentication, auth.authorization and
// auth.profile.user in queue group "q" on a real NATS connection.
type FakeAuth struct {
	Behaviour Behaviour
	Delay     time.Duration
	// ProfileDown makes auth.profile.user answer 503 (auth partly broken).
	ProfileDown atomic.Bool

	nc    *nats.Conn
	subs  []*nats.Subscription
	calls sync.Map // subject → *atomic.Int64

	mu    sync.Mutex
	users map[string]fakeUser // by token
}

type fakeUser struct {
	user  authwire.User
	roles []string
}

// StartFakeAuth connects to url and serves until the test ends.
func StartFakeAuth(t testing.TB, url string, b Behaviour, delay time.Duration) *FakeAuth {
	t.Helper()
	nc, err := nats.Connect(url, nats.Name("fake-auth"))
	if err != nil {
		t.Fatalf("fake auth: connect: %v", err)
	}
	f := &FakeAuth{Behaviour: b, Delay: delay, nc: nc, users: map[string]fakeUser{
		AuthorToken:      {Author, []string{"AUTHOR"}},
		OtherAuthorToken: {OtherAuthor, []string{"AUTHOR"}},
		EditorToken:      {Editor, []string{"EDITOR"}},
		LearnerToken:     {Learner, []string{"LEARNER"}},
	}}
	for subject, handle := range map[string]func([]byte) []byte{
		authwire.SubjectAuthentication: f.authenticate,
		authwire.SubjectAuthorization:  f.authorize,
		authwire.SubjectProfileUser:    f.profile,
	} {
		sub, err := nc.QueueSubscribe(subject, "q", func(m *nats.Msg) {
			f.counter(m.Subject).Add(1)
			go f.respond(m, handle) // concurrent, like the real service
		})
		if err != nil {
			t.Fatalf("fake auth: subscribe %s: %v", subject, err)
		}
		f.subs = append(f.subs, sub)
	}
	if err := nc.Flush(); err != nil {
		t.Fatalf("fake auth: flush: %v", err)
	}
	t.Cleanup(f.Stop)
	return f
}

// Stop unsubscribes and closes the connection (idempotent).
func (f *FakeAuth) Stop() {
	for _, s := range f.subs {
		_ = s.Unsubscribe()
	}
	f.subs = nil
	f.nc.Close()
}

// Calls counts requests received on subject.
func (f *FakeAuth) Calls(subject string) int64 { return f.counter(subject).Load() }

// TotalCalls counts requests on every subject.
func (f *FakeAuth) TotalCalls() int64 {
	return f.Calls(authwire.SubjectAuthentication) + f.Calls(authwire.SubjectAuthorization) + f.Calls(authwire.SubjectProfileUser)
}

func (f *FakeAuth) counter(subject string) *atomic.Int64 {
	c, _ := f.calls.LoadOrStore(subject, new(atomic.Int64))
	return c.(*atomic.Int64)
}

// Rename changes a user's name as auth_service would report it from now on.
func (f *FakeAuth) Rename(id, name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for token, u := range f.users {
		if u.user.ID == id {
			u.user.Name = name
			f.users[token] = u
		}
	}
}

func (f *FakeAuth) respond(m *nats.Msg, handle func([]byte) []byte) {
	switch f.Behaviour {
	case NotJSON:
		_ = m.Respond([]byte("this is not json"))
		return
	case ErrorWithoutStatus:
		_ = m.Respond(natsx.EncodeError("garbage without status"))
		return
	case Slow:
		time.Sleep(f.Delay)
	}
	_ = m.Respond(handle(m.Data))
}

func (f *FakeAuth) authenticate(raw []byte) []byte {
	var req struct {
		Data authwire.Text `json:"data"`
	}
	if json.Unmarshal(raw, &req) != nil {
		return natsx.EncodeError("400:malformed message")
	}
	if req.Data.Value == "" {
		return authwire.Fixture("authentication_error_missing")
	}
	f.mu.Lock()
	u, ok := f.users[req.Data.Value]
	f.mu.Unlock()
	if !ok {
		return authwire.Fixture("authentication_error_invalid_token")
	}
	return encode(u.user)
}

func (f *FakeAuth) authorize(raw []byte) []byte {
	var req struct {
		Data authwire.AuthorizationRequest `json:"data"`
	}
	if json.Unmarshal(raw, &req) != nil || req.Data.User == nil {
		return natsx.EncodeError("400:malformed message")
	}
	if len(req.Data.Roles) == 0 {
		return authwire.Fixture("authorization_error_no_roles")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, u := range f.users {
		if u.user.ID != req.Data.User.ID {
			continue
		}
		for _, want := range req.Data.Roles {
			if slices.Contains(u.roles, want) {
				return encode(u.user)
			}
		}
	}
	return authwire.Fixture("authorization_error_role")
}

func (f *FakeAuth) profile(raw []byte) []byte {
	if f.ProfileDown.Load() {
		return natsx.EncodeError("503:service unavailable")
	}
	var req struct {
		Data authwire.Text `json:"data"`
	}
	if json.Unmarshal(raw, &req) != nil {
		return natsx.EncodeError("400:malformed message")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, u := range f.users {
		if u.user.ID == req.Data.Value {
			// The profile subject answers from a name/picture projection.
			return encode(authwire.User{ID: u.user.ID, Name: u.user.Name, ProfilePicURL: u.user.ProfilePicURL})
		}
	}
	return authwire.Fixture("profile_user_error_missing")
}

func encode(v any) []byte {
	b, err := natsx.Encode(v)
	if err != nil {
		panic(err)
	}
	return b
}
