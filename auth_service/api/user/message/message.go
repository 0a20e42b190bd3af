// Package message holds the NATS payload of auth.profile.user. The wire
// shapes are chassis/authwire's; the types here add validation so a
// malformed request gets a 400 reply.
package message

import (
	"blogplatform/chassis/apperr"
	"blogplatform/chassis/authwire"
	"blogplatform/chassis/mongox"
)

// ProfileRequest is {"value":"<user id hex>"}.
type ProfileRequest authwire.Text

// Validate rejects anything but a 24-character hex id.
func (r *ProfileRequest) Validate() error {
	if !mongox.IsObjectIDHex(r.Value) {
		return apperr.BadRequest("id must be a valid id")
	}
	return nil
}
