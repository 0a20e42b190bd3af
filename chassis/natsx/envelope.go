package natsx

import "encoding/json"

// Message is the envelope in both directions. Requests carry only data;
// replies carry data or error.
type Message struct {
	Data  json.RawMessage `json:"data,omitempty"`
	Error string          `json:"error,omitempty"`
}

// Encode wraps v as {"data":v}.
func Encode(v any) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return json.Marshal(Message{Data: data})
}

// EncodeError builds {"error":text}.
func EncodeError(text string) []byte {
	b, _ := json.Marshal(Message{Error: text})
	return b
}
