package natsx

import (
	"bytes"
	"encoding/json"
)

// Message is the envelope in both directions. Requests carry only data;
// replies carry data or error.
type Message struct {
	Data  json.RawMessage `json:"data,omitempty"`
	Error string          `json:"error,omitempty"`
}

// Encode wraps v as {"data":v}: the bytes json.Marshal(Message{Data: …})
// gives, without encoding (and scanning) v's JSON a second time.
func Encode(v any) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(dataPrefix)+len(data)+1)
	out = append(out, dataPrefix...)
	out = append(out, data...)
	return append(out, '}'), nil
}

const dataPrefix = `{"data":`

// dataOnly returns the data of a message written exactly as Encode writes
// it, {"data":<value>}, without decoding it; ok is false for any other
// shape (an error reply, other spacing or keys), which the caller decodes
// as a whole. The value is not checked to be one JSON value: callers that
// need that check it (json.Valid, or a decode that rejects trailing data).
func dataOnly(msg []byte) (data []byte, ok bool) {
	if len(msg) < len(dataPrefix)+2 || !bytes.HasPrefix(msg, []byte(dataPrefix)) || msg[len(msg)-1] != '}' {
		return nil, false
	}
	return msg[len(dataPrefix) : len(msg)-1], true
}

// EncodeError builds {"error":text}.
func EncodeError(text string) []byte {
	b, _ := json.Marshal(Message{Error: text})
	return b
}
