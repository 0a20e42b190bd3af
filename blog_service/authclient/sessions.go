package authclient

import (
	"encoding/base64"
	"encoding/json"
	"math"
	"strings"
	"time"

	"blogplatform/chassis/authwire"
	"blogplatform/chassis/localcache"
)

// Verified is one answer of Check kept by the session cache: the user
// auth_service returned for a token and role set, and the token's expiry.
type Verified struct {
	User authwire.User
	// Expires is the access token's exp (Unix nanoseconds): the answer is
	// never served from then on, whatever the cache's TTL says.
	Expires int64
}

// Sessions is the verified-session cache in front of Check: raw
// Authorization header and roles → the user auth_service accepted. A nil
// *Sessions is a cache turned off.
//
// An entry is tagged with its user ("user:<id>") and its access token's id
// ("session:<jti>"), and auth_service's change events (HandleChange) drop
// the tagged entries on every replica when a session ends or a user
// changes. The cache's TTL bounds how long an entry outlives a change whose
// event never arrived; changefeed empties the cache whenever events may have
// been missed (NATS disconnected, events dropped).
type Sessions = localcache.Cache[Verified]

// WithSessions makes Check answer from sessions (nil: no cache) and returns
// c. Call it before c is used; HandleChange must follow
// authwire.SubjectChanges for the cache to be correct (see Sessions).
func (c *Client) WithSessions(sessions *Sessions) *Client {
	c.sessions = sessions
	return c
}

// sessionKey is the cache key of header checked for roles. Role codes are
// constants without NUL, so the first NUL ends them; the header is kept
// byte for byte, because auth_service judged exactly those bytes.
func sessionKey(header string, roles []string) string {
	if len(roles) == 1 {
		return roles[0] + "\x00" + header
	}
	return strings.Join(roles, ",") + "\x00" + header
}

// cached returns the live answer for key.
func (c *Client) cached(key string) (authwire.User, bool) {
	v, ok := c.sessions.Get(key)
	if !ok || c.now().UnixNano() >= v.Expires {
		return authwire.User{}, false
	}
	return v.User, true
}

// remember stores auth_service's yes for key, unless an invalidation
// happened since generation was read (the answer may predate a sign-out),
// the token's id or expiry cannot be read (no tag to drop it by), or the
// token has expired already.
func (c *Client) remember(key, header string, user authwire.User, generation uint64) {
	jti, exp, ok := tokenClaims(header)
	if !ok || c.now().UnixNano() >= exp {
		return
	}
	c.sessions.Set(key, Verified{User: user, Expires: exp}, generation,
		authwire.UserTag(user.ID), authwire.SessionTag(jti))
}

// tokenClaims reads the jti and exp (Unix nanoseconds) of the bearer token
// in header WITHOUT verifying it. That is safe only because it is called
// after auth_service verified the very same bytes: the values serve as a
// tag to drop the entry by and as an expiry, never as proof of anything.
// It reads the token the way auth_service does ("Bearer " then a
// three-part JWT whose middle part is base64url JSON) and gives up on
// anything else.
func tokenClaims(header string) (jti string, exp int64, ok bool) {
	raw, found := strings.CutPrefix(header, "Bearer ")
	if !found {
		return "", 0, false
	}
	_, rest, found := strings.Cut(raw, ".")
	if !found {
		return "", 0, false
	}
	payload, sig, found := strings.Cut(rest, ".")
	if !found || strings.Contains(sig, ".") {
		return "", 0, false
	}
	decoded, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return "", 0, false
	}
	var claims struct {
		ID        string   `json:"jti"`
		ExpiresAt *float64 `json:"exp"`
	}
	if err := json.Unmarshal(decoded, &claims); err != nil || claims.ID == "" || claims.ExpiresAt == nil {
		return "", 0, false
	}
	// exp is NumericDate: seconds, possibly fractional. Beyond what
	// int64 nanoseconds hold, the token is treated as unreadable rather
	// than as never expiring.
	secs := *claims.ExpiresAt
	if math.IsNaN(secs) || secs <= 0 || secs >= float64(math.MaxInt64/int64(time.Second)) {
		return "", 0, false
	}
	return claims.ID, int64(secs * float64(time.Second)), true
}

// HandleChange applies one of auth_service's change events
// (authwire.SubjectChanges) to the session cache: it drops the answers
// carrying the event's tags (authwire.Change.Tags: a session that ended, a
// changed user; API-key events name nothing it holds). An event it cannot
// read, or that names nothing it knows, empties the cache: what changed is
// unknown.
func (c *Client) HandleChange(_ string, data []byte) {
	if c.sessions == nil {
		return
	}
	var ch authwire.Change
	if err := json.Unmarshal(data, &ch); err != nil {
		c.sessions.Clear()
		return
	}
	if tags := ch.Tags(); tags != nil {
		c.sessions.Invalidate(tags...)
		return
	}
	c.sessions.Clear()
}
