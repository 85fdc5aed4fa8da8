// Command etcd is etcd v3.6.5's server, built from the published go.etcd.io/etcd/server/v3
// module (the etcd repository's own main module cannot be installed with `go install`).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
