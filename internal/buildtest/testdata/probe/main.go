// Command probe is the binary TestBuildSeeded builds.
package main

import "fmt"

func main() { fmt.Println("probe") }
