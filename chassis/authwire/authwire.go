// Package authwire is the NATS contract between auth_service and its callers:
// subjects and payload shapes exactly as the reference sends them, so
// a reference blog_service can use this auth_service and the other way round.
// The JSON fixtures in fixtures/ are the one copy both services test against.
package authwire

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"strings"
)

// Subjects served by auth_service (group "auth" and "auth.profile", queue "q").
const (
	SubjectAuthentication = "auth.authentication"
	SubjectAuthorization  = "auth.authorization"
	SubjectProfileUser    = "auth.profile.user"

	// SubjectAuthenticateAuthorize is this platform's own subject, not the
	// reference's: auth.authentication then auth.authorization in one round
	// trip (AuthenticateAuthorizeRequest in, User out). It fails exactly as
	// the two would in sequence: the authentication error (401) first, then
	// the authorization error (403). A reference auth_service does not serve
	// it, so a caller that gets no responders falls back to the two subjects.
	SubjectAuthenticateAuthorize = "auth.authenticate.authorize"
)

// Text is the request data of auth.authentication (the raw Authorization
// header, possibly "") and auth.profile.user (a user id in hex).
type Text struct {
	Value string `json:"value"`
}

// User is the reply data of all three subjects. Email is not omitempty: the
// profile subject answers with "email":"" like the reference.
type User struct {
	ID            string  `json:"_id"`
	Name          string  `json:"name"`
	Email         string  `json:"email"`
	ProfilePicURL *string `json:"profilePicUrl,omitempty"`
}

// AuthorizationRequest is the request data of auth.authorization. Only
// User.ID is used by the server; the rest is carried for compatibility.
type AuthorizationRequest struct {
	User  *User    `json:"user"`
	Roles []string `json:"roles"`
}

// AuthenticateAuthorizeRequest is the request data of
// auth.authenticate.authorize: the raw Authorization header (possibly "",
// as in Text) and the role codes of which the user must hold one (as in
// AuthorizationRequest; an empty list grants nothing).
type AuthenticateAuthorizeRequest struct {
	Value string   `json:"value"`
	Roles []string `json:"roles"`
}

// SubjectChanges carries auth_service's change events (Change) to every
// replica of every service (a plain publication, no queue group), so caches
// kept per replica drop what the change made stale at once instead of at
// their TTL. It lies outside auth.> so that a service allowed to send
// requests to auth cannot forge its events.
const SubjectChanges = "events.auth.changed"

// Kinds of Change.
const (
	// ChangeSession: one session (access token id SessionID of user
	// UserID) ended or was replaced (sign-out, refresh).
	ChangeSession = "session"
	// ChangeUser: anything about user UserID changed (roles, status, a
	// session family revoked): every cached answer about the user is stale.
	ChangeUser = "user"
	// ChangeAPIKey: the API key whose APIKeyHash is given changed
	// (disabled, enabled, created).
	ChangeAPIKey = "apikey"
)

// Change is one change event. The API key itself never travels: followers
// compare hashes (APIKeyHash).
type Change struct {
	Kind       string `json:"kind"`
	UserID     string `json:"userId,omitempty"`
	SessionID  string `json:"sessionId,omitempty"`
	APIKeyHash string `json:"apiKeyHash,omitempty"`
}

// Tags of cached answers about auth's data. Every per-replica cache of
// such answers (auth's own, blog's verified sessions) tags each entry with
// the tags of what it depends on, and drops the entries carrying the tags
// of each Change it receives (Change.Tags).
func SessionTag(jti string) string { return "session:" + jti }
func UserTag(id string) string     { return "user:" + strings.ToLower(id) }
func APIKeyTag(hash string) string { return "apikey:" + hash }

// Tags returns the tags of the cached answers c makes stale: a session
// event drops its session (the whole user when it names no session), a
// user event the user (its sessions included, as they carry the user's
// tag), an API-key event the key. nil for a Change that names nothing it
// knows: the receiver cannot tell what changed and must drop everything.
func (c Change) Tags() []string {
	switch c.Kind {
	case ChangeSession:
		if c.SessionID != "" {
			return []string{SessionTag(c.SessionID)}
		}
		if c.UserID != "" {
			return []string{UserTag(c.UserID)}
		}
	case ChangeUser:
		if c.UserID != "" {
			return []string{UserTag(c.UserID)}
		}
	case ChangeAPIKey:
		if c.APIKeyHash != "" {
			return []string{APIKeyTag(c.APIKeyHash)}
		}
	}
	return nil
}

// APIKeyHash is the hex SHA-256 of an API key, as Change carries it.
func APIKeyHash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

//go:embed fixtures/*.json
var fixtures embed.FS

// Fixture returns the named fixture file (without .json), e.g.
// "authentication_request". It panics on an unknown name: fixtures are
// compiled in, so a typo is a programming error caught by any test.
func Fixture(name string) []byte {
	b, err := fixtures.ReadFile("fixtures/" + name + ".json")
	if err != nil {
		panic(fmt.Sprintf("authwire: no fixture %q", name))
	}
	return b
}

// FixtureNames lists every fixture.
func FixtureNames() []string {
	entries, _ := fixtures.ReadDir("fixtures")
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		n := e.Name()
		names = append(names, n[:len(n)-len(".json")])
	}
	return names
}
