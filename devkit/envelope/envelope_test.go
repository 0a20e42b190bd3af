package envelope

import (
	"errors"
	"testing"
)

func TestDecode(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		want     Envelope
		wantData string
		hasData  bool
		wantErr  bool
	}{
		{name: "success with data", body: `{"code":"10000","status":200,"message":"success","data":{"id":"x","n":[1,2]}}`,
			want: Envelope{Code: "10000", Status: 200, Message: "success"}, wantData: `{"id":"x","n":[1,2]}`, hasData: true},
		{name: "error without data", body: `{"code":"10001","status":400,"message":"email is required"}`,
			want: Envelope{Code: "10001", Status: 400, Message: "email is required"}},
		{name: "null data", body: `{"code":"10000","status":200,"message":"ok","data":null}`,
			want: Envelope{Code: "10000", Status: 200, Message: "ok"}, wantData: "null"},
		{name: "empty list is data", body: `{"code":"10000","status":200,"message":"ok","data":[]}`,
			want: Envelope{Code: "10000", Status: 200, Message: "ok"}, wantData: "[]", hasData: true},
		{name: "gateway body", body: ` {"message":"no Route matched with those values"}` + "\n",
			want: Envelope{Message: "no Route matched with those values"}},
		{name: "not JSON", body: "<html>502</html>", wantErr: true},
		{name: "empty", body: "", wantErr: true},
		{name: "JSON but not an object", body: `["x"]`, wantErr: true},
		{name: "wrong field type", body: `{"status":"200"}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode([]byte(tt.body))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err %v, want error %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if string(got.Data) != tt.wantData {
				t.Errorf("data %s, want %s", got.Data, tt.wantData)
			}
			if got.HasData() != tt.hasData {
				t.Errorf("HasData %v, want %v", got.HasData(), tt.hasData)
			}
			if got.Code != tt.want.Code || got.Status != tt.want.Status || got.Message != tt.want.Message {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestInto(t *testing.T) {
	e, err := Decode([]byte(`{"code":"10000","status":200,"message":"success","data":{"title":"T","tags":["a"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	var blog struct {
		Title string   `json:"title"`
		Tags  []string `json:"tags"`
	}
	if err := e.Into(&blog); err != nil || blog.Title != "T" || len(blog.Tags) != 1 || blog.Tags[0] != "a" {
		t.Fatalf("Into: %+v %v", blog, err)
	}
	var wrong []string
	if err := e.Into(&wrong); err == nil {
		t.Error("decoded an object into a list")
	}
	empty, _ := Decode([]byte(`{"code":"10001","status":404,"message":"not found"}`))
	if err := empty.Into(&blog); !errors.Is(err, ErrNoData) {
		t.Errorf("Into without data: %v, want ErrNoData", err)
	}
}
