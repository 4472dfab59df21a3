# bench/sync.mk — issue 4's sync benchmark and chaos run, included from the
# top-level Makefile.

.PHONY: bench-sync chaos

# preau vs rclone copy over the emulated 2 Mbit/s, 300 ms, 1 % loss uplink
# (bench/sync.sh; needs root and rclone).
bench-sync:
	bash bench/sync.sh

# The hand-in chaos tests at full strength: 200 kill -9 of preau on the
# emulated link (sync), and 200 kill -9 trials per WebDAV server
# (sync/webdav). `make test` runs 20 of each.
CHAOS_KILLS ?= 200
chaos:
	PREAU_CHAOS_KILLS=$(CHAOS_KILLS) $(GO) test -tags $(TAGS) -buildvcs=false -count=1 -timeout 120m \
	  -run '^TestChaosHandInOverEmulatedLink$$' -v ./sync
	PREAU_CHAOS=1 $(GO) test -tags $(TAGS) -buildvcs=false -count=1 -timeout 60m \
	  -run '^TestKill9AtRandomInstants$$' -v ./sync/webdav
