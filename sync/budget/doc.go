// Package budget is the one WAN budget of the box (SPEC §3): every
// background transfer over the school's uplink — hand-ins now, updates and
// prefetch later — asks it when it may run (Wait) and sends through the
// HTTP client it hands out (Doer), which paces the transfer to a rate
// that yields to the school's own traffic. It owns the calendar of
// background windows, the class priorities, the daily cap and the rate
// controller. Only appliance imports it.
//
// # When transfers may run
//
// Wait(class) returns when the clock is set (boards without a real-time
// clock boot in 1970), the uplink is online, the daily cap is not spent,
// no higher class is transferring or waiting, and the calendar is open:
// a holiday, or inside Windows and outside ClassHours (defaults: evenings
// and nights 17:30–08:00, weekends and Wednesday afternoon; classes
// Monday–Friday 08:00–17:30 but Wednesday afternoon). Times are wall-clock
// times of Config.Location, so DST days just have a shorter or longer
// night. SendNow ignores the calendar until the queue has been idle for
// a few seconds. A transfer already running when the window closes goes
// on at the controller's rate, which keeps it out of the way.
//
// Classes running at the same time share the rate by weight (hand-in 8,
// update 4, prefetch 1).
//
// # Control law
//
// The controller is LEDBAT (RFC 6817) applied to the scheduler's own TCP
// connections, with the transport's measurements as its input and a
// pacer as its output. One controller runs per direction (up, down).
//
// Input. Every 100 ms while transfers run, the scheduler reads TCP_INFO
// of each of its connections. A connection that moved at least two
// segments gives a sample: for uploads its smoothed RTT (tcpi_rtt) and
// min RTT (tcpi_min_rtt), for downloads the receiver's RTT estimate
// (tcpi_rcv_rtt); bytes are counted in segments delivered (tcpi_delivered,
// tcpi_data_segs_in), which do not jump when a hole is repaired; a loss
// is a rise of tcpi_total_retrans (up) or of out-of-order arrivals (down).
// A receiver acknowledges every other segment and TCP times the older
// one, so a paced flow's smoothed RTT carries about one packet interval
// of ACK delay (up to the 40 ms delayed-ACK timer): it is taken off, or
// it would read as a standing queue. The current delay D is the least of
// the last 3 samples (RFC 6817's CURRENT_FILTER; each sample the least
// over the connections). The base delay B is the least of the per-minute
// minima of the last 10 minutes (§3.4.2, BASE_HISTORY = 10), fed by D and
// tcpi_min_rtt. The queueing delay is q = D − B; T is the target
// (Config.TargetDelay, 25 ms).
//
// State. A virtual congestion window W in bytes; the pacing rate is
// r = W / (B+q), one window per current RTT. Pacing at W/RTT emulates a
// window: once the bottleneck is full the queue settles at q = W/C − B
// for a link of capacity C, so q follows W directly and the loop is
// first-order as LEDBAT's is (a law acting on the rate itself would
// integrate twice, rate into queue, and oscillate).
//
// Update, per sample of b bytes delivered, at most one decrease per RTT:
//
//	q > 2T:           W ← W · max(½, (B+T)/(B+q))     drain the excess queue at once
//	loss and q > T/2: W ← W · max(½, (B+T/2)/(B+q))   drain to half the target
//	otherwise:        W ← W + GAIN · off · b · MSS / W   off = (T−q)/T in [−1, 1], GAIN = 1
//	                  W ← W + g · b                     while q < T/4, g = ¼ · (1 − 4q/T)
//	then              W ≤ h · best · (B+q);  r = clamp(W/(B+q), MinRate, MaxRate)
//
// The first rule is the "multiplicative decrease when q > 2×target",
// sized to remove the queue above the target in one RTT (as FAST TCP
// does) rather than to empty the pipe. A loss is cut the way TCP Veno
// does: with a queue it is congestion; with no queue it is most likely
// random (a rural line's 1 %) and is left to TCP to repair, because
// cutting on each would pin the rate far below the link. The third rule
// is LEDBAT's own (one segment per RTT at q = 0, one less per RTT at
// q = 2T). At 300 ms RTT one segment per RTT takes minutes to fill even
// 2 Mbit/s, so while the queue is clearly empty W also grows by up to a
// quarter per RTT, fading to nothing at T/4, and by an eighth of that
// within 15 % of the rate at which the queue last grew (the knee, kept
// 30 s: as CUBIC slows near its last maximum, since the delay signal
// comes an RTT late). Growth needs the rate to be used: transfers waited
// for the pacer (or for the kernel pacing at the same rate) during the
// sample, and the path delivered at least 85 % of what was paced an RTT
// earlier (an unused window proves nothing, RFC 7661); decreases always
// apply. Growth stops at the first sample showing a queue, decreases
// wait for the filtered delay. A gap of more than half a second without
// samples (a link cut, a pause between files) freezes the history: the
// first samples after it, TCP restarting from one segment, do not count
// as the recent best delivery. After a minute without samples W is
// halved.
//
// TCP underneath. The OS's TCP would fill the bottleneck queue by itself;
// the pacer keeps the sending rate at r and the controller finds the
// bottleneck by q rising. A loss-based TCP (cubic) under a pacer still
// collapses on random loss, so the connections use BBR when the kernel
// allows it (Config.Congestion); BBR, in turn, has its own bandwidth
// model and probes 25 % above it every few RTTs. The last rule keeps
// the two in step: while transfers want more than r, r stays within
// h × best, best being the best delivery rate of the last 3 RTTs, with
// h = 1.3 while delivery grows, 1.1 when it does not, and 1 once the
// queue shows (q ≥ T/4), so that TCP's probes cannot overshoot through
// our rate and a decrease bites at once. Each connection also gets
// SO_MAX_PACING_RATE at 1.05 r, so that the kernel spaces the packets of
// a chunk and has sent them before the next one comes (TCP then sees an
// application-limited flow and BBR follows the pacer rather than its own
// model), and TCP_NOTSENT_LOWAT, so that the socket buffer cannot hide a
// backlog from the pacer. Its retransmission timeout is capped at 1 s (or
// four base RTTs; TCP_RTO_MAX_MS, Linux 6.15+): while the link is cut
// the timeout doubles at each try, and with the default 120 s ceiling
// the first segment after a 5 s cut waits 2–3 s more on average, after
// a minute's cut up to a minute. A 5-minute TCP_USER_TIMEOUT then
// decides when a connection is dead, not the count of retries.
//
// Equilibrium. Alone on the link the scheduler keeps a queue of about T
// or less and the link full; beside a foreground flow that adds its own
// queue, q rises and the scheduler gives way within an RTT or two. On
// the emulated rural line of the tests (2 Mbit/s, 300 ms RTT, 1 % loss,
// a modem's deep buffer) a foreground flow's RTT rises by about 10 ms at
// the median and 35–50 ms at the 90th percentile, where a plain BBR
// upload adds 40 ms and 300 ms; an upload alone runs at over 90 % of the
// line once ramped up (a cold start takes about 5 s to get there).
//
// Output. Each class has a token bucket per direction, shared by its
// transfers, filled at its share of r. Writes take tokens before sending
// a chunk (5 ms of the rate in whole segments, at least two, at most
// 64 KiB); reads pay after receiving, so a reader held back lets the TCP
// receive window pace the sender.
package budget
