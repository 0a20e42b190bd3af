// Command standin is a tiny stand-in for auth_service and blog_service, used
// only by the platform package's own tests: it reads the same SERVER_HOST /
// SERVER_PORT / NATS_SERVICE_NAME / SHUTDOWN_DRAIN_DELAY variables, serves
// /health/ready (503 while draining), /verify/apikey like auth, and echoes
// everything else with the replica's identity, logging JSON lines to stdout.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	name := os.Getenv("NATS_SERVICE_NAME")
	addr := net.JoinHostPort(os.Getenv("SERVER_HOST"), os.Getenv("SERVER_PORT"))
	drain, _ := time.ParseDuration(os.Getenv("SHUTDOWN_DRAIN_DELAY"))
	var draining atomic.Bool

	mux := http.NewServeMux()
	mux.HandleFunc("/health/ready", func(w http.ResponseWriter, r *http.Request) {
		if draining.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, `{"status":"ok"}`)
	})
	mux.HandleFunc("/verify/apikey", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("x-api-key") != os.Getenv("SEED_API_KEY") {
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `{"code":"10001","status":403,"message":"permission denied: invalid x-api-key"}`)
			return
		}
		fmt.Fprint(w, `{"code":"10000","status":200,"message":"success"}`)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Request-ID", r.Header.Get("X-Request-ID"))
		_ = json.NewEncoder(w).Encode(map[string]any{
			"code": "10000", "status": 200, "message": "success",
			"data": map[string]string{"service": name, "port": os.Getenv("SERVER_PORT"), "path": r.URL.RequestURI(), "envFile": os.Getenv("ENV_FILE")},
		})
	})
	srv := &http.Server{Addr: addr, Handler: mux}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Error("listen", "error", err)
		os.Exit(1)
	}
	log.Info("listening", "addr", addr, "service", name)
	go func() { _ = srv.Serve(ln) }()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	<-ctx.Done()
	stop()
	log.Info("draining", "delay", drain.String())
	draining.Store(true)
	time.Sleep(drain)
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	log.Info("stopped")
}
