// Command virt-setup gets rootless containerd and nerdctl working on a Linux machine, and finds out
// why they do not.
package main

import "os"

func main() { os.Exit(Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }
