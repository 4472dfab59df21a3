package demo

import (
	"bytes"
	"encoding/binary"
)

// The melody is synthesised with integer arithmetic only (a sine table from
// Bhaskara's approximation, a fixed-point phase accumulator), so the WAV
// bytes do not depend on the machine's floating-point behaviour.

const (
	sampleRate = 22050
	beatMillis = 400 // one quarter note
	tableBits  = 12
	tableSize  = 1 << tableBits
)

// Note frequencies in millihertz (equal temperament, A4 = 440 Hz).
const (
	noteG3 = 196000
	noteA3 = 220000
	noteB3 = 246942
	noteC4 = 261626
	noteD4 = 293665
	noteE4 = 329628
)

// note is a pitch in millihertz and a length in quarter notes.
type note struct{ freq, beats int }

// auClairDeLaLune returns the public-domain tune, four phrases of four bars.
func auClairDeLaLune() []note {
	phraseA := []note{
		{noteC4, 1}, {noteC4, 1}, {noteC4, 1}, {noteD4, 1},
		{noteE4, 2}, {noteD4, 2},
		{noteC4, 1}, {noteE4, 1}, {noteD4, 1}, {noteD4, 1},
		{noteC4, 4},
	}
	phraseB := []note{
		{noteD4, 1}, {noteD4, 1}, {noteD4, 1}, {noteD4, 1},
		{noteA3, 2}, {noteA3, 2},
		{noteD4, 1}, {noteC4, 1}, {noteB3, 1}, {noteA3, 1},
		{noteG3, 4},
	}
	var tune []note
	for _, p := range [][]note{phraseA, phraseA, phraseB, phraseA} {
		tune = append(tune, p...)
	}
	return tune
}

// sineTable returns one period of a sine wave scaled to ±32767.
func sineTable() []int32 {
	const half = tableSize / 2
	t := make([]int32, tableSize)
	for i := 0; i < half; i++ {
		// Bhaskara I: sin(πi/N) ≈ 16 i (N−i) / (5N² − 4 i (N−i)).
		p := int64(i) * int64(half-i)
		v := 16 * p * 32767 / (5*half*half - 4*p)
		t[i] = int32(v)
		t[i+half] = int32(-v)
	}
	return t
}

// melodyWAV renders the tune as a 16-bit mono PCM WAV file.
func melodyWAV() []byte {
	table := sineTable()
	// Harmonic weights: a soft, slightly reedy timbre.
	harmonics := [...]int64{64, 28, 14, 6}
	var weightSum int64
	for _, w := range harmonics {
		weightSum += w
	}
	const (
		attack  = sampleRate * 12 / 1000 // 12 ms
		release = sampleRate * 50 / 1000 // 50 ms, separates repeated notes
		fullEnv = 1024
		tail    = sampleRate // one second of silence-fade at the end
	)
	var pcm []int16
	for _, n := range auClairDeLaLune() {
		length := sampleRate * beatMillis * n.beats / 1000
		inc := uint32(uint64(n.freq) << 32 / (sampleRate * 1000))
		var phase uint32
		for i := 0; i < length; i++ {
			var s int64
			for k, w := range harmonics {
				ph := phase * uint32(k+1)
				s += w * int64(table[ph>>(32-tableBits)])
			}
			s /= weightSum
			// Envelope: quick attack, gentle linear decay to 55 %, release.
			env := int64(fullEnv) - int64(fullEnv*45/100)*int64(i)/int64(length)
			if i < attack {
				env = env * int64(i) / attack
			}
			if left := length - i; left < release {
				env = env * int64(left) / release
			}
			s = s * env / fullEnv * 20 / 32 // leave headroom
			pcm = append(pcm, int16(s))
			phase += inc
		}
	}
	pcm = append(pcm, make([]int16, tail)...)
	return wavFile(pcm)
}

// wavFile wraps 16-bit mono samples in a RIFF/WAVE container.
func wavFile(pcm []int16) []byte {
	dataLen := uint32(len(pcm) * 2)
	var b bytes.Buffer
	le := binary.LittleEndian
	b.WriteString("RIFF")
	_ = binary.Write(&b, le, 36+dataLen)
	b.WriteString("WAVEfmt ")
	_ = binary.Write(&b, le, uint32(16))           // fmt chunk size
	_ = binary.Write(&b, le, uint16(1))            // PCM
	_ = binary.Write(&b, le, uint16(1))            // mono
	_ = binary.Write(&b, le, uint32(sampleRate))   // sample rate
	_ = binary.Write(&b, le, uint32(sampleRate*2)) // byte rate
	_ = binary.Write(&b, le, uint16(2))            // block align
	_ = binary.Write(&b, le, uint16(16))           // bits per sample
	b.WriteString("data")
	_ = binary.Write(&b, le, dataLen)
	_ = binary.Write(&b, le, pcm)
	return b.Bytes()
}
