// SOA serials (RFC 1982 sequence space arithmetic) and how a zone's next one
// is chosen.
//
// Time-based: a change gets max(now in unix seconds, previous + 1). Why not a
// counter: a counter restarts at 0 or 1 with the process, and every secondary
// would then ignore the zone (an older serial) until it expires. Unix seconds
// keep growing across restarts without any state on disk; eipdns has no state
// directory today, and a serial file shared by a primary pair would need one.
//
// Failure modes, and why they are bounded:
// - More than one change per second pushes the serial ahead of the clock
//   (previous + 1). A restart within that lead gives a serial below the last
//   one; secondaries keep the old copy until the lead passes (seconds, for a
//   burst of moves) or the next change after it.
// - The clock steps back by d seconds: changes still get previous + 1 while
//   the process runs; a restart during the step gives a smaller serial, and
//   secondaries hold the last data they took for up to d seconds. NTP steps on
//   EC2 are sub-second; a large step means a broken host.
// - Two primaries (a pair) give the same data different serials (each uses
//   the time it saw the change). The newest data still has the highest serial
//   within a poll interval's skew, so secondaries converge; IXFR from the other
//   primary falls back to a full transfer.

/** a > b in serial number arithmetic (RFC 1982 §3.2). Equal or undefined (distance 2^31) is not greater. */
export function serialGt(a: number, b: number): boolean {
  const d = ((a >>> 0) - (b >>> 0)) >>> 0;
  return d !== 0 && d < 0x8000_0000;
}

/** a ≥ b in serial number arithmetic. */
export function serialGe(a: number, b: number): boolean {
  return a >>> 0 === b >>> 0 || serialGt(a, b);
}

/** The serial for a change seen at `nowMs`, given the zone's previous serial (if it had one). */
export function nextSerial(previous: number | undefined, nowMs: number): number {
  const clock = Math.floor(nowMs / 1000) >>> 0;
  if (previous === undefined || serialGt(clock, previous)) return clock;
  return (previous + 1) >>> 0;
}
