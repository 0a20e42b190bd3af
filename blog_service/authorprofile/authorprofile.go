// Package authorprofile fills in the author's public profile of blogs that
// were stored without one: blogs the reference's blog_service wrote (it
// asks auth_service on every read instead of storing the profile), until
// the start-up backfill (package migrations) has given them theirs.
//
// The profile comes from auth_service over NATS (auth.profile.user) and is
// cached in Redis per author (blogcache:profile:<id>), so a page of blogs
// by one author, or an editor reading them one after another, asks
// auth_service once per author and TTL. Outcomes:
//   - auth_service knows the user: its name and picture;
//   - auth_service answers that it does not know the user (a deleted or
//     deactivated user, any 4xx answer): an empty profile (name ""), cached
//     like a found one. A blog is never hidden or failed because of its
//     author, unlike the reference's 404 "author not found";
//   - auth_service cannot answer (no responders, timeout, open circuit, 5xx):
//     the blog is left without a profile and Fill reports it, so callers
//     serve it with an empty author name now and do not cache that answer;
//     the author appears on a later read. A read never fails, and never
//     waits longer than one auth request, because of the author.
package authorprofile

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"golang.org/x/sync/singleflight"

	"blogplatform/blog_service/model"
	"blogplatform/chassis/apperr"
	"blogplatform/chassis/authwire"
	"blogplatform/chassis/cache"
)

// KeyPrefix starts the cache key of an author's profile (the author's id in
// hex follows). It is under the blog cache's "blogcache:" prefix, which the
// service's Redis ACL allows.
const KeyPrefix = "blogcache:profile:"

// Profiler asks auth_service for a user's public profile (authclient.Client).
type Profiler interface {
	Profile(ctx context.Context, id string) (authwire.User, error)
}

// Resolver looks up and caches author profiles. It is safe for concurrent
// use; a nil cache disables caching.
type Resolver struct {
	auth    Profiler
	kv      *cache.Cache
	ttl     time.Duration
	log     *slog.Logger
	flights singleflight.Group
}

// New returns a Resolver; ttl bounds how long a profile (or the knowledge
// that a user does not exist) is reused before auth_service is asked again.
func New(auth Profiler, kv *cache.Cache, ttl time.Duration, log *slog.Logger) *Resolver {
	if log == nil {
		log = slog.Default()
	}
	return &Resolver{auth: auth, kv: kv, ttl: ttl, log: log}
}

// cached is the cache value: Known is false for a user auth_service does
// not know.
type cached struct {
	Known         bool    `json:"known"`
	Name          string  `json:"name"`
	ProfilePicURL *string `json:"profilePicUrl,omitempty"`
}

// ErrUnavailable: auth_service could not answer; try again later.
var ErrUnavailable = errors.New("author profile: auth service unavailable")

// Lookup returns the public profile of the user with id. known is false
// when auth_service does not know the user; the profile is then empty.
// The error is ErrUnavailable (wrapping the cause) when auth_service could
// not answer.
func (r *Resolver) Lookup(ctx context.Context, id bson.ObjectID) (p model.AuthorProfile, known bool, err error) {
	key := KeyPrefix + id.Hex()
	var c cached
	if r.kv != nil && r.kv.GetJSON(ctx, key, &c) {
		return model.AuthorProfile{Name: c.Name, ProfilePicURL: c.ProfilePicURL}, c.Known, nil
	}
	v, err, _ := r.flights.Do(key, func() (any, error) {
		c, err := r.ask(context.WithoutCancel(ctx), id.Hex())
		if err == nil && r.kv != nil {
			r.kv.SetJSON(ctx, key, c, r.ttl)
		}
		return c, err
	})
	if err != nil {
		return model.AuthorProfile{}, false, err
	}
	c = v.(cached)
	return model.AuthorProfile{Name: c.Name, ProfilePicURL: c.ProfilePicURL}, c.Known, nil
}

func (r *Resolver) ask(ctx context.Context, id string) (cached, error) {
	u, err := r.auth.Profile(ctx, id)
	if err == nil {
		return cached{Known: true, Name: u.Name, ProfilePicURL: u.ProfilePicURL}, nil
	}
	if status, _ := apperr.Public(err); status >= http.StatusBadRequest && status < http.StatusInternalServerError {
		// auth_service answered, and the answer is that this user has no
		// public profile (the reference says "user does not exists" or
		// "mongo: no documents in result").
		return cached{Known: false}, nil
	}
	return cached{}, errors.Join(ErrUnavailable, err)
}

// Fill gives b its author's profile when it has none. It reports whether b
// now has one; false means auth_service could not answer, b is unchanged,
// and a view built from it (with an empty author name) should not be
// cached. Blogs that already carry a profile are returned as they are
// without asking anyone.
func (r *Resolver) Fill(ctx context.Context, b *model.Blog) bool {
	if b == nil || b.AuthorProfile != nil {
		return true
	}
	p, _, err := r.Lookup(ctx, b.Author)
	if err != nil {
		r.log.Warn("author profile unavailable; serving the blog without the author's name",
			"blog", b.ID.Hex(), "author", b.Author.Hex(), "error", err.Error())
		return false
	}
	b.AuthorProfile = &p
	return true
}
