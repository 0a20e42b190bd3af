// Command fakeredis stands in for the redis-server binary in the process
// lifecycle tests on machines without Redis installed: it takes the same
// config file StartRedis writes (port, requirepass), serves the protocol with
// miniredis, and runs until it is signalled or killed, like a real child.
package main

import (
	"bufio"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/alicebob/miniredis/v2"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: fakeredis <config file>")
		os.Exit(2)
	}
	f, err := os.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	port, password := "", ""
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		key, value, _ := strings.Cut(strings.TrimSpace(scanner.Text()), " ")
		switch key {
		case "port":
			port = value
		case "requirepass":
			if unquoted, err := strconv.Unquote(value); err == nil {
				value = unquoted
			}
			password = value
		}
	}
	f.Close()
	m := miniredis.NewMiniRedis()
	if password != "" {
		m.RequireAuth(password)
	}
	if err := m.StartAddr("127.0.0.1:" + port); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
	m.Close()
}
