// Package archtest holds no code. Its test reads the import rules that the
// packages' doc.go files state, one row per sentence, and fails, naming the
// package and the import, when the code breaks one.
package archtest
