// Command barrier drives etcd's Go contrib/recipes Barrier and DoubleBarrier
// for the interop tests. Each step it finishes is printed as one line on
// stdout; a failure prints "error: ..." on stderr and exits 1.
//
//	barrier -endpoints URL hold KEY        holds the barrier, prints "held"
//	barrier -endpoints URL release KEY     releases it, prints "released"
//	barrier -endpoints URL wait KEY        prints "waited" once it is released
//	barrier -endpoints URL [-ttl S] double KEY COUNT
//	    enters the double barrier on a session of S seconds, prints "entered",
//	    then leaves when a line arrives on stdin (or stdin closes), prints "left"
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/clientv3"
	"go.etcd.io/etcd/clientv3/concurrency"
	recipe "go.etcd.io/etcd/contrib/recipes"
)

func main() {
	endpoints := flag.String("endpoints", "http://127.0.0.1:2379", "comma-separated client URLs")
	ttl := flag.Int("ttl", 10, "session TTL in seconds (double)")
	flag.Parse()
	args := flag.Args()
	if len(args) < 2 {
		fail(fmt.Errorf("usage: barrier [-endpoints URL] [-ttl S] hold|release|wait KEY | double KEY COUNT"))
	}
	client, err := clientv3.New(clientv3.Config{
		Endpoints:   strings.Split(*endpoints, ","),
		DialTimeout: 10 * time.Second,
	})
	if err != nil {
		fail(err)
	}
	defer client.Close()

	command, key := args[0], args[1]
	switch command {
	case "hold":
		check(recipe.NewBarrier(client, key).Hold())
		say("held")
	case "release":
		check(recipe.NewBarrier(client, key).Release())
		say("released")
	case "wait":
		check(recipe.NewBarrier(client, key).Wait())
		say("waited")
	case "double":
		if len(args) != 3 {
			fail(fmt.Errorf("usage: barrier double KEY COUNT"))
		}
		count, err := strconv.Atoi(args[2])
		check(err)
		session, err := concurrency.NewSession(client, concurrency.WithTTL(*ttl))
		check(err)
		defer session.Close()
		say(fmt.Sprintf("lease %x", int64(session.Lease())))
		b := recipe.NewDoubleBarrier(session, key, count)
		check(b.Enter())
		say("entered")
		// Any line, or the end of stdin, means: leave now.
		bufio.NewReader(os.Stdin).ReadString('\n')
		check(b.Leave())
		say("left")
	default:
		fail(fmt.Errorf("unknown command %q", command))
	}
}

func say(line string) {
	fmt.Println(line)
}

func check(err error) {
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "error: %v\n", err)
	os.Exit(1)
}
