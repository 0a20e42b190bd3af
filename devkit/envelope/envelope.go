// Package envelope reads the platform's JSON response envelope
// ({"code","status","message","data"}) in tests and development tools.
//
// The services write it with chassis/httpx, whose Envelope carries data as
// any for encoding; a reader wants data undecoded, to compare it byte for
// byte or decode it into the type the test expects, so this is the one type
// tests and tools decode into.
package envelope

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Envelope is a decoded response body. Code is "" and Status 0 in bodies
// that are not the services' (the gateway's own {"message": ...} answers).
type Envelope struct {
	Code    string          `json:"code"`
	Status  int             `json:"status"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data"`
}

// ErrNoData is returned by Into when the envelope carries no data (absent or
// null).
var ErrNoData = errors.New("envelope: no data")

// Decode reads body as an envelope; anything but a JSON object is an error.
func Decode(body []byte) (Envelope, error) {
	var e Envelope
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return Envelope{}, fmt.Errorf("envelope: body is not a JSON object: %.200q", body)
	}
	if err := json.Unmarshal(trimmed, &e); err != nil {
		return Envelope{}, fmt.Errorf("envelope: %w: %.200q", err, body)
	}
	return e, nil
}

// HasData reports whether the envelope carries data (present and not null).
func (e Envelope) HasData() bool {
	return len(e.Data) > 0 && !bytes.Equal(bytes.TrimSpace(e.Data), []byte("null"))
}

// Into decodes the envelope's data into out.
func (e Envelope) Into(out any) error {
	if !e.HasData() {
		return ErrNoData
	}
	if err := json.Unmarshal(e.Data, out); err != nil {
		return fmt.Errorf("envelope data: %w", err)
	}
	return nil
}
