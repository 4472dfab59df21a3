package content

import (
	"bytes"
	"fmt"
	"testing"
)

func TestHotCacheEvictsLeastRecentlyUsed(t *testing.T) {
	c := newHotCache(30)
	blob := func(i int) []byte { return bytes.Repeat([]byte{byte(i)}, 10) }
	for i := range 3 {
		c.put(fmt.Sprint(i), blob(i))
	}
	if _, ok := c.get("0"); !ok { // 0 becomes the most recent
		t.Fatal("get(0) missed before any eviction")
	}
	c.put("3", blob(3)) // evicts 1, the least recently used
	if _, ok := c.get("1"); ok {
		t.Error("get(1) hit; want it evicted")
	}
	for _, k := range []string{"0", "2", "3"} {
		b, ok := c.get(k)
		if !ok {
			t.Errorf("get(%s) missed", k)
			continue
		}
		if want := blob(int(k[0] - '0')); !bytes.Equal(b, want) {
			t.Errorf("get(%s) = %v, want %v", k, b, want)
		}
	}
	if c.used != 30 {
		t.Errorf("used = %d, want 30", c.used)
	}
	c.put("big", make([]byte, 31)) // larger than the whole cache: not kept
	if _, ok := c.get("big"); ok || c.used != 30 {
		t.Errorf("oversized blob kept (used %d)", c.used)
	}
}
