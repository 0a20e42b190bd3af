package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"blogplatform/chassis/authwire"
	"blogplatform/chassis/natsx/inbox"
	"blogplatform/tools/internal/platform"
)

const caseNATSAuth = "NATS auth.authentication"

// natsAuthJob measures auth.authentication over NATS the way blog asks it
// (blog's NATS user, the reference's {"data":{"value":...}} request), with
// one shared connection as a blog replica has. wrk cannot speak NATS, so this
// case always runs on the Go driver, in this process.
func natsAuthJob(p *platform.Platform, accessToken string) (job, func(), error) {
	user, password := p.NATSCredentials("blog")
	// Each NATS user may read only its own inbox subjects, as blog does.
	nc, err := nats.Connect(p.NATSURL(), nats.UserInfo(user, password), nats.CustomInboxPrefix(inbox.Prefix(user)), nats.Name("bench"))
	if err != nil {
		return job{}, nil, fmt.Errorf("nats: %w", err)
	}
	payload, err := json.Marshal(map[string]authwire.Text{"data": {Value: "Bearer " + accessToken}})
	if err != nil {
		nc.Close()
		return job{}, nil, err
	}
	do := func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		msg, err := nc.RequestWithContext(ctx, authwire.SubjectAuthentication, payload)
		if err != nil {
			return err
		}
		// A reply is {"data":{user}} or {"error":"status:message"}.
		if !bytes.HasPrefix(msg.Data, []byte(`{"data":`)) {
			return fmt.Errorf("%s: %s", authwire.SubjectAuthentication, msg.Data)
		}
		return nil
	}
	return job{target: "nats", name: caseNATSAuth, service: "auth", do: do}, nc.Close, nil
}
