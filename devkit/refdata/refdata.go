// Package refdata writes databases as the reference implementation (the
// gomicro services this platform replaces) leaves them: its documents, field
// for field in its BSON shapes (no field this platform adds), and its
// indexes under its names. Tests start our services on such databases to
// check they are a drop-in replacement: that they read everything the
// reference wrote and migrate what needs migrating.
//
// The shapes follow the reference's models: users (no verified or
// profilePicUrl on the seeded admin), roles, keystores, api_keys from its
// seed script, blogs without authorProfile or search terms.
package refdata

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// The reference seed script's values.
const (
	APIKey        = "1D3F2DD1A5DE725DD4DF1D82BBB37"
	AdminEmail    = "admin@unusualcode.org"
	AdminPassword = "changeit"
	// AdminPasswordHash is the seed script's bcrypt hash (cost 10) of
	// AdminPassword.
	AdminPasswordHash = "$2a$10$psWmSrmtyZYvtIt/FuJL1OLqsK3iR1fZz5.wUYFuSNkkt.EOX9mLa"
	APIKeyComment     = "To be used by the xyz vendor"
)

// Role codes.
const (
	Learner = "LEARNER"
	Author  = "AUTHOR"
	Editor  = "EDITOR"
	Admin   = "ADMIN"
)

// Index is one index as the reference creates it, under its name.
type Index struct {
	Collection string
	Name       string
	Keys       bson.D
	Unique     bool
	// Weights: a text index (the blogs search index); stores without text
	// indexes (FerretDB v1) refuse it, which Seed* tolerates.
	Weights bson.D
}

// AuthIndexes are the reference auth service's indexes (names as the
// driver generates them from the keys), the api_keys one on a field api keys
// do not have included.
func AuthIndexes() []Index {
	return []Index{
		{Collection: "users", Name: "_id_1_status_1", Keys: bson.D{{Key: "_id", Value: 1}, {Key: "status", Value: 1}}},
		{Collection: "users", Name: "email_1_status_1", Keys: bson.D{{Key: "email", Value: 1}, {Key: "status", Value: 1}}},
		{Collection: "users", Name: "email_1", Keys: bson.D{{Key: "email", Value: 1}}, Unique: true},
		{Collection: "roles", Name: "_id_1_status_1", Keys: bson.D{{Key: "_id", Value: 1}, {Key: "status", Value: 1}}},
		{Collection: "roles", Name: "code_1_status_1", Keys: bson.D{{Key: "code", Value: 1}, {Key: "status", Value: 1}}},
		{Collection: "roles", Name: "code_1", Keys: bson.D{{Key: "code", Value: 1}}, Unique: true},
		{Collection: "keystores", Name: "client_1_pKey_1_status_1", Keys: bson.D{{Key: "client", Value: 1}, {Key: "pKey", Value: 1}, {Key: "status", Value: 1}}},
		{Collection: "keystores", Name: "client_1_pKey_1_sKey_1_status_1", Keys: bson.D{{Key: "client", Value: 1}, {Key: "pKey", Value: 1}, {Key: "sKey", Value: 1}, {Key: "status", Value: 1}}},
		{Collection: "api_keys", Name: "code_1_status_1", Keys: bson.D{{Key: "code", Value: 1}, {Key: "status", Value: 1}}},
		{Collection: "api_keys", Name: "key_1", Keys: bson.D{{Key: "key", Value: 1}}, Unique: true},
	}
}

// BlogIndexes are the reference blog service's indexes.
func BlogIndexes() []Index {
	return []Index{
		{Collection: "blogs", Name: "slug_1", Keys: bson.D{{Key: "slug", Value: 1}}, Unique: true},
		{Collection: "blogs", Name: "title_text_description_text", Keys: bson.D{{Key: "title", Value: "text"}, {Key: "description", Value: "text"}},
			Weights: bson.D{{Key: "title", Value: 3}, {Key: "description", Value: 1}}},
		{Collection: "blogs", Name: "_id_1_status_1", Keys: bson.D{{Key: "_id", Value: 1}, {Key: "status", Value: 1}}},
		{Collection: "blogs", Name: "published_1_status_1", Keys: bson.D{{Key: "published", Value: 1}, {Key: "status", Value: 1}}},
		{Collection: "blogs", Name: "_id_1_published_1_status_1", Keys: bson.D{{Key: "_id", Value: 1}, {Key: "published", Value: 1}, {Key: "status", Value: 1}}},
		{Collection: "blogs", Name: "slug_1_published_1_status_1", Keys: bson.D{{Key: "slug", Value: 1}, {Key: "published", Value: 1}, {Key: "status", Value: 1}}},
		{Collection: "blogs", Name: "tags_1_published_1_status_1", Keys: bson.D{{Key: "tags", Value: 1}, {Key: "published", Value: 1}, {Key: "status", Value: 1}}},
	}
}

// CreateIndexes creates indexes under their names. A text index the store
// refuses is skipped and reported in skipped; any other failure is an error.
func CreateIndexes(ctx context.Context, db *mongo.Database, indexes []Index) (skipped []string, err error) {
	for _, ix := range indexes {
		o := options.Index().SetName(ix.Name)
		if ix.Unique {
			o.SetUnique(true)
		}
		if ix.Weights != nil {
			o.SetWeights(ix.Weights)
		}
		if _, err := db.Collection(ix.Collection).Indexes().CreateOne(ctx, mongo.IndexModel{Keys: ix.Keys, Options: o}); err != nil {
			if ix.Weights != nil {
				skipped = append(skipped, ix.Collection+"."+ix.Name)
				continue
			}
			return skipped, fmt.Errorf("refdata: index %s.%s: %w", ix.Collection, ix.Name, err)
		}
	}
	return skipped, nil
}

// User is a user written in the reference's shape.
type User struct {
	ID          bson.ObjectID
	Name, Email string
	Password    string // clear text, for signing in
	// PasswordHash is what the reference stored: bcrypt of Password (its
	// sign-up uses cost 5).
	PasswordHash  string
	ProfilePicURL string // "" for none (the field is then absent)
	Roles         []string
}

// Keystore is a session the reference created (its access token's jti is
// PKey, its refresh token's SKey).
type Keystore struct {
	ID         bson.ObjectID
	Client     bson.ObjectID
	PKey, SKey string
}

// Auth is what SeedAuth wrote.
type Auth struct {
	RoleIDs   map[string]bson.ObjectID
	Admin     User
	Users     map[string]User // by Email
	Keystores []Keystore      // one per user in Users
	// SkippedIndexes: indexes the store refused (none for auth).
	SkippedIndexes []string
}

// SeedAuth writes an auth database as the reference leaves it after its
// seed script and after users signed up (their PasswordHash, verified false,
// status true, roles as given) and signed in (a keystore each): the api key,
// the four roles, the admin holding them all (its seed shape: no verified,
// no profilePicUrl), then users, then the reference's indexes by name.
func SeedAuth(ctx context.Context, db *mongo.Database, users []User) (*Auth, error) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	for _, c := range []string{"api_keys", "roles"} { // as the seed script does
		if err := db.CreateCollection(ctx, c); err != nil && !isNamespaceExists(err) {
			return nil, fmt.Errorf("refdata: create %s: %w", c, err)
		}
	}
	if _, err := db.Collection("api_keys").InsertOne(ctx, bson.D{
		{Key: "key", Value: APIKey}, {Key: "permissions", Value: bson.A{"GENERAL"}},
		{Key: "comments", Value: bson.A{APIKeyComment}}, {Key: "version", Value: 1},
		{Key: "status", Value: true}, {Key: "createdAt", Value: now}, {Key: "updatedAt", Value: now},
	}); err != nil {
		return nil, fmt.Errorf("refdata: api key: %w", err)
	}
	a := &Auth{RoleIDs: map[string]bson.ObjectID{}, Users: map[string]User{}}
	for _, code := range []string{Learner, Author, Editor, Admin} {
		id := bson.NewObjectID()
		if _, err := db.Collection("roles").InsertOne(ctx, bson.D{
			{Key: "_id", Value: id}, {Key: "code", Value: code}, {Key: "status", Value: true},
			{Key: "createdAt", Value: now}, {Key: "updatedAt", Value: now},
		}); err != nil {
			return nil, fmt.Errorf("refdata: role %s: %w", code, err)
		}
		a.RoleIDs[code] = id
	}
	a.Admin = User{ID: bson.NewObjectID(), Name: "Admin", Email: AdminEmail, Password: AdminPassword, Roles: []string{Learner, Author, Editor, Admin}}
	if _, err := db.Collection("users").InsertOne(ctx, bson.D{
		{Key: "_id", Value: a.Admin.ID}, {Key: "name", Value: "Admin"}, {Key: "email", Value: AdminEmail},
		{Key: "password", Value: AdminPasswordHash}, {Key: "roles", Value: a.roleIDs(a.Admin.Roles)},
		{Key: "status", Value: true}, {Key: "createdAt", Value: now}, {Key: "updatedAt", Value: now},
	}); err != nil {
		return nil, fmt.Errorf("refdata: admin: %w", err)
	}
	for _, u := range users {
		if u.ID.IsZero() {
			u.ID = bson.NewObjectID()
		}
		if u.PasswordHash == "" {
			return nil, fmt.Errorf("refdata: user %s has no PasswordHash", u.Email)
		}
		doc := bson.D{{Key: "_id", Value: u.ID}, {Key: "name", Value: u.Name}, {Key: "email", Value: u.Email}, {Key: "password", Value: u.PasswordHash}}
		if u.ProfilePicURL != "" {
			doc = append(doc, bson.E{Key: "profilePicUrl", Value: u.ProfilePicURL})
		}
		doc = append(doc, bson.E{Key: "roles", Value: a.roleIDs(u.Roles)}, bson.E{Key: "verified", Value: false},
			bson.E{Key: "status", Value: true}, bson.E{Key: "createdAt", Value: now}, bson.E{Key: "updatedAt", Value: now})
		if _, err := db.Collection("users").InsertOne(ctx, doc); err != nil {
			return nil, fmt.Errorf("refdata: user %s: %w", u.Email, err)
		}
		a.Users[u.Email] = u
		ks := Keystore{ID: bson.NewObjectID(), Client: u.ID, PKey: randomHex(), SKey: randomHex()}
		if _, err := db.Collection("keystores").InsertOne(ctx, bson.D{
			{Key: "_id", Value: ks.ID}, {Key: "client", Value: ks.Client}, {Key: "pKey", Value: ks.PKey}, {Key: "sKey", Value: ks.SKey},
			{Key: "status", Value: true}, {Key: "createdAt", Value: now}, {Key: "updatedAt", Value: now},
		}); err != nil {
			return nil, fmt.Errorf("refdata: keystore of %s: %w", u.Email, err)
		}
		a.Keystores = append(a.Keystores, ks)
	}
	skipped, err := CreateIndexes(ctx, db, AuthIndexes())
	a.SkippedIndexes = skipped
	return a, err
}

// AccessToken signs an access token for ks as the reference does: RS256,
// registered claims only, in its order (iss, sub, aud as an array, exp, nbf,
// iat, jti = the keystore's pKey), whole seconds.
func AccessToken(key *rsa.PrivateKey, ks Keystore, issuer, audience string, now time.Time, validity time.Duration) (string, error) {
	enc := base64.RawURLEncoding
	header := enc.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT"}`))
	claims, err := json.Marshal(struct {
		Iss string   `json:"iss"`
		Sub string   `json:"sub"`
		Aud []string `json:"aud"`
		Exp int64    `json:"exp"`
		Nbf int64    `json:"nbf"`
		Iat int64    `json:"iat"`
		Jti string   `json:"jti"`
	}{issuer, ks.Client.Hex(), []string{audience}, now.Add(validity).Unix(), now.Unix(), now.Unix(), ks.PKey})
	if err != nil {
		return "", err
	}
	signing := header + "." + enc.EncodeToString(claims)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		return "", err
	}
	return signing + "." + enc.EncodeToString(sig), nil
}

func (a *Auth) roleIDs(codes []string) bson.A {
	ids := bson.A{}
	for _, c := range codes {
		ids = append(ids, a.RoleIDs[c])
	}
	return ids
}

// Blog is a blog written in the reference's shape.
type Blog struct {
	ID                 bson.ObjectID
	Title, Description string
	DraftText          string
	Text               string // the published copy; "" and unpublished: absent
	Tags               []string
	Author             bson.ObjectID
	ImgURL             string
	Slug               string
	Submitted, Drafted bool
	Published          bool
}

// Doc is the blog's document as the reference stores it: its fields only
// (no authorProfile, no search terms), score 0.01, publishedAt only when
// published, text only when published.
func (b Blog) Doc(now time.Time) bson.D {
	doc := bson.D{{Key: "_id", Value: b.ID}, {Key: "title", Value: b.Title}, {Key: "description", Value: b.Description}}
	if b.Published {
		doc = append(doc, bson.E{Key: "text", Value: b.Text})
	}
	doc = append(doc, bson.E{Key: "draftText", Value: b.DraftText}, bson.E{Key: "tags", Value: b.Tags},
		bson.E{Key: "author", Value: b.Author})
	if b.ImgURL != "" {
		doc = append(doc, bson.E{Key: "imgUrl", Value: b.ImgURL})
	}
	doc = append(doc, bson.E{Key: "slug", Value: b.Slug}, bson.E{Key: "score", Value: 0.01},
		bson.E{Key: "submitted", Value: b.Submitted}, bson.E{Key: "drafted", Value: b.Drafted},
		bson.E{Key: "published", Value: b.Published}, bson.E{Key: "status", Value: true})
	if b.Published {
		doc = append(doc, bson.E{Key: "publishedAt", Value: now})
	}
	return append(doc, bson.E{Key: "createdBy", Value: b.Author}, bson.E{Key: "updatedBy", Value: b.Author},
		bson.E{Key: "createdAt", Value: now}, bson.E{Key: "updatedAt", Value: now})
}

// SeedBlogs inserts blogs (ids filled in when zero) and creates the
// reference's blog indexes; skipped lists the text index when the store has
// none. The returned slice carries the ids.
func SeedBlogs(ctx context.Context, db *mongo.Database, blogs []Blog) (out []Blog, skipped []string, err error) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	docs := make([]any, 0, len(blogs))
	for _, b := range blogs {
		if b.ID.IsZero() {
			b.ID = bson.NewObjectID()
		}
		out = append(out, b)
		docs = append(docs, b.Doc(now))
	}
	for start := 0; start < len(docs); start += 1000 {
		if _, err := db.Collection("blogs").InsertMany(ctx, docs[start:min(len(docs), start+1000)]); err != nil {
			return nil, nil, fmt.Errorf("refdata: blogs: %w", err)
		}
	}
	skipped, err = CreateIndexes(ctx, db, BlogIndexes())
	return out, skipped, err
}

func randomHex() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func isNamespaceExists(err error) bool {
	var ce mongo.CommandError
	return errors.As(err, &ce) && ce.Code == 48
}
