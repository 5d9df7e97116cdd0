// Writes Go's case-fold sets, the oracle of the inspector's
// reject_case_insensitive folding (go_fold.rs's tests): every set of more
// than one character, other than the ASCII letters' own, one a line, in
// hexadecimal. Regenerate with a Go toolchain (Debian's golang-go was 1.19):
//
//	go run plugin/src/inspector/go_fold_classes.go > plugin/src/inspector/go_fold_classes.txt
package main

import (
	"fmt"
	"unicode"
)

// foldRune is how Go 1.21+'s encoding/json folds a key's rune: to the
// smallest of its SimpleFold orbit (earlier releases compare with
// bytes.EqualFold, which walks the same orbits).
func foldRune(r rune) rune {
	for {
		r2 := unicode.SimpleFold(r)
		if r2 <= r {
			return r2
		}
		r = r2
	}
}

func main() {
	classes := map[rune][]rune{}
	var order []rune
	for r := rune(0x80); r <= unicode.MaxRune; r++ {
		if r >= 0xD800 && r <= 0xDFFF {
			continue
		}
		f := foldRune(r)
		if _, ok := classes[f]; !ok {
			order = append(order, f)
		}
		classes[f] = append(classes[f], r)
	}
	for r := rune(0); r < 0x80; r++ {
		f := foldRune(r)
		if _, ok := classes[f]; ok {
			classes[f] = append([]rune{r}, classes[f]...)
		}
	}
	fmt.Printf("# unicode %s\n", unicode.Version)
	for _, f := range order {
		members := classes[f]
		if len(members) < 2 {
			continue
		}
		for i, m := range members {
			if i > 0 {
				fmt.Print(" ")
			}
			fmt.Printf("%04X", m)
		}
		fmt.Println()
	}
}
