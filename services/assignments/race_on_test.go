//go:build race

package assignments

// raceEnabled slows helper processes down a lot: the crash test asks for
// fewer kills then.
const raceEnabled = true
