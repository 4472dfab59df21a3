//go:build race

package content

// raceEnabled slows helper processes down a lot: the crash test asks for
// fewer trials then.
const raceEnabled = true
