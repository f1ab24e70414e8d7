// Command osprey-bench generates benchmark inputs and compares osprey ingest with DuckDB.
package main

import (
	"fmt"
	"os"
	"time"
)

func main() {
	f, _ := os.Create(os.Args[1])
	n, err := writeAudit(f, 1<<30, 1, time.Now(), 7*24*time.Hour)
	fmt.Println(n, err)
	f.Close()
}
