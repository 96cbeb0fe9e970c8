// Command etcd is the upstream etcd server, built from go.etcd.io/etcd/server/v3.
//
// go.etcd.io/etcd/server/v3/etcdmain is a library package, not a main
// package, so this thin wrapper is needed (it mirrors upstream etcd's
// own main.go).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
