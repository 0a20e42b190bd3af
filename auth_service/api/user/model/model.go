// Package model holds the users and roles documents (§9.3 of the reference:
// collection and field names are part of the contract).
package model

import (
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"blogplatform/chassis/mongox"
)

const (
	UsersCollection = "users"
	RolesCollection = "roles"
	// EmailConflictsCollection lists accounts whose emails differ only by
	// letter case (see user.MigrateEmails).
	EmailConflictsCollection = "email_conflicts"
)

// Role codes (the reference's rolecode enum).
const (
	RoleLearner = "LEARNER"
	RoleAuthor  = "AUTHOR"
	RoleEditor  = "EDITOR"
	RoleAdmin   = "ADMIN"
)

// AllRoles are the codes the bootstrap ensures, in the reference's order.
var AllRoles = []string{RoleLearner, RoleAuthor, RoleEditor, RoleAdmin}

// NormalizeEmail is the one form an email is stored and looked up in:
// surrounding spaces removed and lower case, so "Ada@Example.com " and
// "ada@example.com" are one account. (The local part is case-sensitive in
// theory; no mail provider in use treats it so, and two accounts differing
// only by case are a trap for their owners.)
func NormalizeEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

type User struct {
	ID            bson.ObjectID   `bson:"_id,omitempty"`
	Name          string          `bson:"name"`
	Email         string          `bson:"email"`
	Password      string          `bson:"password,omitempty"`
	ProfilePicURL *string         `bson:"profilePicUrl,omitempty"`
	Roles         []bson.ObjectID `bson:"roles,omitempty"`
	Verified      bool            `bson:"verified"`
	Status        bool            `bson:"status"`
	CreatedAt     time.Time       `bson:"createdAt"`
	UpdatedAt     time.Time       `bson:"updatedAt"`
}

type Role struct {
	ID        bson.ObjectID `bson:"_id,omitempty"`
	Code      string        `bson:"code"`
	Status    bool          `bson:"status"`
	CreatedAt time.Time     `bson:"createdAt"`
	UpdatedAt time.Time     `bson:"updatedAt"`
}

// Indexes of both collections. The unique email index is what makes
// concurrent sign-ups with one email safe; the unique code index does the
// same for concurrent bootstraps.
func Indexes() []mongox.Index {
	// A builder per index: the driver writes the generated name into the
	// builder it is given, so a shared one would name the roles index after
	// the users index (email_1).
	unique := func() *options.IndexOptionsBuilder { return options.Index().SetUnique(true) }
	return []mongox.Index{
		{Collection: UsersCollection, Model: mongo.IndexModel{Keys: bson.D{{Key: "_id", Value: 1}, {Key: "status", Value: 1}}}},
		{Collection: UsersCollection, Model: mongo.IndexModel{Keys: bson.D{{Key: "email", Value: 1}, {Key: "status", Value: 1}}}},
		{Collection: UsersCollection, Model: mongo.IndexModel{Keys: bson.D{{Key: "email", Value: 1}}, Options: unique()}},
		{Collection: RolesCollection, Model: mongo.IndexModel{Keys: bson.D{{Key: "_id", Value: 1}, {Key: "status", Value: 1}}}},
		{Collection: RolesCollection, Model: mongo.IndexModel{Keys: bson.D{{Key: "code", Value: 1}, {Key: "status", Value: 1}}}},
		{Collection: RolesCollection, Model: mongo.IndexModel{Keys: bson.D{{Key: "code", Value: 1}}, Options: unique()}},
	}
}
