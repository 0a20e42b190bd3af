package admin

import (
	"time"

	keymodel "blogplatform/auth_service/api/apikey/model"
	userdto "blogplatform/auth_service/api/user/dto"
)

// APIKeyInfo is a key as operators see it: never its value. Suffix (the
// value's last four characters, for keys of at least 16) lets an operator
// tell which key a client holds without the service showing it.
type APIKeyInfo struct {
	ID          string    `json:"_id"`
	Suffix      string    `json:"suffix,omitempty"`
	Comments    []string  `json:"comments"`
	Permissions []string  `json:"permissions"`
	Status      bool      `json:"status"`
	CreatedAt   time.Time `json:"createdAt"`
	UpdatedAt   time.Time `json:"updatedAt"`
}

// CreatedAPIKey is a key just created, with its value (shown this once).
type CreatedAPIKey struct {
	APIKeyInfo
	Key string `json:"key"`
}

// suffixMinLength: a shorter key would give away too much of itself.
const suffixMinLength = 16

func keyInfo(k *keymodel.ApiKey) APIKeyInfo {
	info := APIKeyInfo{ID: k.ID.Hex(), Comments: k.Comments, Permissions: k.Permissions, Status: k.Status,
		CreatedAt: k.CreatedAt.UTC(), UpdatedAt: k.UpdatedAt.UTC()}
	if len(k.Key) >= suffixMinLength {
		info.Suffix = k.Key[len(k.Key)-4:]
	}
	if info.Comments == nil {
		info.Comments = []string{}
	}
	if info.Permissions == nil {
		info.Permissions = []string{}
	}
	return info
}

// AdminUser is a user as operators see it: its active roles and whether it
// is enabled (status false: disabled).
type AdminUser struct {
	ID     string             `json:"_id"`
	Email  string             `json:"email"`
	Name   string             `json:"name"`
	Status bool               `json:"status"`
	Roles  []userdto.InfoRole `json:"roles"`
}

// DisabledUser is the answer to a disable.
type DisabledUser struct {
	User          AdminUser `json:"user"`
	SessionsEnded int       `json:"sessionsEnded"`
}

// SessionInfo is one session (keystore) of a user. The token ids it holds
// are not shown: the keystore id names the session.
type SessionInfo struct {
	ID        string    `json:"_id"`
	Family    string    `json:"family"`
	CreatedAt time.Time `json:"createdAt"`
}

// EndedSessions is the answer to ending every session of a user.
type EndedSessions struct {
	Ended int `json:"ended"`
}

// CreateKeyRequest is the optional body of POST /admin/apikeys.
type CreateKeyRequest struct {
	Comments []string `json:"comments"` // checked by the handler (one message for every rule)
}

// KeyPage is the query of GET /admin/apikeys.
type KeyPage struct {
	After string `form:"after" validate:"omitempty,len=24,objectid"`
	Limit int    `form:"limit"` // checked by the handler (1 to MaxKeyPage)
}

// UserQuery is the query of GET /admin/users.
type UserQuery struct {
	Email string `form:"email" binding:"required" validate:"email,max=320"`
}

// PathID is the :id of /admin/apikeys/:id and /admin/users/:id/...
type PathID struct {
	ID string `uri:"id" binding:"required" validate:"required,len=24,objectid"`
}

// UserSession is the :id and :sessionId of /admin/users/:id/sessions/:sessionId.
type UserSession struct {
	ID        string `uri:"id" binding:"required" validate:"required,len=24,objectid"`
	SessionID string `uri:"sessionId" binding:"required" validate:"required,len=24,objectid"`
}
