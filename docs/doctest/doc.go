// Package doctest runs the documentation as a test: the fenced shell
// blocks of README.md and docs/*.md are executed and their Go blocks are
// compiled, so a documented command or example cannot drift from the code.
// See doctest_test.go for the rules (which files and sections, how a block
// is marked as not runnable, which lines are substituted).
package doctest
